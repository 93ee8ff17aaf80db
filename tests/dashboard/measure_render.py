"""How long the checks page takes to render for 1,000 checks (server time), a measurement, not a test:

    python -m tests.dashboard.measure_render [N]

Starts the front end on a loopback port, makes N checks (a third pinged, some with tags, a tenth on a
cron schedule), signs in, then times GET / over HTTP from the client and, separately, the handler's
own time in the server (Tornado's request_time).
"""

from __future__ import annotations

import statistics
import sys
import time

from tests.conftest import API_KEY, T0, make_settings, start_server
from tests.dashboard.conftest import Browserless
from tests.fakes import FakeClock


def main(n: int = 1000) -> None:
    live, stop = start_server(make_settings(check_limit=n + 10), FakeClock(T0))
    try:
        for i in range(n):
            fields = {"name": f"job {i:04d}", "tags": f"team{i % 7} env{i % 3}"}
            if i % 10 == 0:
                fields.update(schedule="0 3 * * *", tz="Europe/Riga")
            uuid = live.create(**fields)["uuid"]
            if i % 3 == 0:
                live.ping(f"/ping/{uuid}")
        session = Browserless(live)
        session.sign_in(API_KEY)
        times = []
        server = []
        app = live.server.app
        app.settings["log_function"] = lambda handler: server.append(handler.request.request_time())
        for _ in range(30):
            started = time.perf_counter()
            r = session.get("/")
            times.append(time.perf_counter() - started)
            assert r.status_code == 200 and r.text.count("<tr id=") == n
        del app.settings["log_function"]
        print(f"{n} checks, page {len(r.content) / 1024:.0f} KiB, 30 renders")
        print(
            f"server (request_time): median {statistics.median(server) * 1000:.1f} ms, max {max(server) * 1000:.1f} ms"
        )
        print(f"client round trip:     median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
    finally:
        stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
