"""Logging as the operator chose it: HC_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR) and HC_LOG_FORMAT
(`text`, or `json` for one JSON object a line, which Loki, ELK and journald take as it is).

    configure("INFO", "json")
    # {"time": "2024-05-01T12:00:00.123+00:00", "level": "INFO", "logger": "hcserver.notify",
    #  "message": "check 5bf6... \\"backup\\" up -> down (missed deadline)"}

The access log (`hcserver.access`, one line per ping) is written at DEBUG only: the HTTP layer asks
once, at start, whether it is on.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, and the traceback as
    `exc_info` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send every log record at `level` or above to stderr, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # asyncio and tornado log every connection event at DEBUG; the access log says what matters.
    for noisy in ("asyncio", "tornado"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))
