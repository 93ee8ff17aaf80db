"""Webhook placeholders, as the reference fills them in.

| placeholder   | value                                                                  |
| ------------- | ---------------------------------------------------------------------- |
| `$CODE`       | the check's uuid                                                       |
| `$STATUS`     | "up" or "down"                                                         |
| `$NOW`        | the flip's time, ISO 8601 at seconds precision (2024-01-02T03:04:05+00:00) |
| `$NAME`       | the check's name                                                       |
| `$NAME_JSON`  | the name as a JSON string, quotes included: `"My \\"job\\""`             |
| `$SLUG`       | the check's slug                                                       |
| `$TAGS`       | the tags, space separated; `$TAG1`, `$TAG2`, ... one tag each           |
| `$JSON`       | the check as the Management API shows it, as JSON                      |
| `$BODY`       | the last ping's body (UTF-8, undecodable bytes replaced); request bodies only |
| `$BODY_JSON`  | the same as a JSON string, quotes included; request bodies only        |
| `$EXITSTATUS` | the last ping's exit status, -1 when it had none                       |

In URLs every value is percent-encoded; in request bodies and headers it is inserted as is (headers
additionally lose line breaks, and characters outside latin-1 become `&#NNN;` as in the reference).
`$BODY` and `$BODY_JSON` are only filled in request bodies, like the reference: elsewhere they stay.

Substitution is one pass over the template: a value that itself contains `$NAME` is not expanded
again, and `$$NAME` is a dollar sign followed by the name. The longest known placeholder wins, so
`$NAME_JSON` is not `$NAME` + "_JSON", and `$TAG10` is the tenth tag when there is one (otherwise,
as in the reference, it reads as `$TAG1` followed by "0"). Unknown `$FOO` stays as it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hcserver.views import isostring


@dataclass(frozen=True, slots=True)
class AlertContext:
    """Everything an alert says about one flip of one check, gathered by the caller at flip time.

    `now` is the flip's time (epoch seconds), `check_json` the check as the Management API returns
    it, `body`/`exitstatus`/`last_ping` come from the last ping before the flip (None if none).
    """

    code: str
    name: str
    slug: str
    tags: str
    status: str
    now: float
    check_json: Mapping[str, Any]
    body: bytes | None
    exitstatus: int | None
    project_name: str
    last_ping: float | None = None

    @property
    def display_name(self) -> str:
        """The name, or the uuid for an unnamed check (the reference's `name_then_code`)."""
        return self.name or self.code

    def tag_list(self) -> list[str]:
        return self.tags.split()

    def body_text(self) -> str:
        return self.body.decode("utf-8", "replace") if self.body else ""


def clean(text: str) -> str:
    """`text` with lone surrogates (JSON can carry them, as "\\ud800") turned into "?": they cannot
    be encoded as UTF-8, and every value here ends up in a URL, a request or an email."""
    return text.encode("utf-8", "replace").decode("utf-8")


def placeholders(ctx: AlertContext, *, with_body: bool = False) -> dict[str, str]:
    """Placeholder -> raw (not yet encoded) value."""
    values = {
        "$CODE": ctx.code,
        "$STATUS": ctx.status,
        "$NOW": isostring(ctx.now) or "",
        "$NAME": ctx.name,
        "$NAME_JSON": json.dumps(ctx.name),
        "$SLUG": ctx.slug,
        "$TAGS": ctx.tags,
        "$JSON": json.dumps(dict(ctx.check_json)),
        "$EXITSTATUS": "-1" if ctx.exitstatus is None else str(ctx.exitstatus),
    }
    if with_body:
        text = ctx.body_text()
        values["$BODY"] = text
        values["$BODY_JSON"] = json.dumps(text)
    for i, tag in enumerate(ctx.tag_list(), start=1):
        values[f"$TAG{i}"] = tag
    return {k: clean(v) for k, v in values.items()}


def substitute(template: str, values: Mapping[str, str]) -> str:
    """Replace each placeholder that occurs in `template` with its value, in a single pass."""
    if "$" not in template or not values:
        return template
    # Longest first, because the regex engine takes the first alternative that matches.
    names = sorted(values, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(name) for name in names))
    return pattern.sub(lambda m: values[m.group(0)], template)


def render_url(template: str, ctx: AlertContext) -> str:
    # safe="" so a name with "/", "?", "&" or "#" cannot change the URL's structure.
    values = {k: quote(v, safe="") for k, v in placeholders(ctx).items()}
    return substitute(clean(template), values)


def render_body(template: str, ctx: AlertContext) -> str:
    return substitute(clean(template), placeholders(ctx, with_body=True))


def render_header(template: str, ctx: AlertContext) -> str:
    value = substitute(clean(template), placeholders(ctx))
    # A line break would end the header (tornado refuses it outright); NUL is never valid.
    value = value.replace("\r", " ").replace("\n", " ").replace("\x00", " ")
    # HTTP/1.1 header values travel as latin-1: anything else becomes an XML character reference.
    return value.encode("latin-1", "xmlcharrefreplace").decode("latin-1")
