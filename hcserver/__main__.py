"""Command line: `hcserver serve` / `python -m hcserver serve`, and the admin commands (`hcserver.cli_admin`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import signal
import sys
from collections.abc import Sequence

from hcserver import cli_admin, logs, systemd
from hcserver.alerts.settings import AlertSettings
from hcserver.config import SETTINGS_HELP, Settings, SettingsError
from hcserver.metrics import version
from hcserver.runtime import STARTUP_ERRORS, Runtime

log = logging.getLogger("hcserver")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hcserver",
        description="A Healthchecks-compatible cron-job and heartbeat monitor.",
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hcserver {version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the Pinging and Management APIs",
        epilog=SETTINGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to listen on (HC_HOST; default 127.0.0.1, '::' for all)")
    serve.add_argument("--port", type=int, help="TCP port (HC_PORT; default 8000, 0 for any free port)")
    serve.add_argument("--db", help="path of the SQLite store (HC_DB; default ./data/hcserver.sqlite3)")
    serve.add_argument("--durable", action="store_true", default=None, help="answer pings after commit")
    serve.add_argument("--certfile", help="TLS certificate (PEM) to serve HTTPS")
    serve.add_argument("--keyfile", help="TLS private key (PEM)")
    cli_admin.add_commands(commands)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, env: dict[str, str]) -> Settings:
    settings = Settings.from_env(env)
    overrides = {
        name: getattr(args, name)
        for name in ("host", "port", "db", "durable", "certfile", "keyfile")
        if getattr(args, name) is not None
    }
    if "port" in overrides and not 0 <= overrides["port"] <= 65535:
        raise SettingsError("--port must be between 0 and 65535")
    if ("host" in overrides or "port" in overrides) and "SITE_ROOT" not in env:
        # SITE_ROOT defaults to http://HOST:PORT: derive it again from the flags.
        overrides["site_root"] = ""
        overrides["ping_endpoint"] = env.get("PING_ENDPOINT", "")
    return settings.replace(**overrides) if overrides else settings


async def serve(settings: Settings, alerts: AlertSettings) -> int:
    log.info("hcserver %s (Python %s)", version(), platform.python_version())
    runtime = await Runtime.start(settings, alerts=alerts)
    keys = runtime.issued_keys
    index = runtime.ctx.index
    site_root = runtime.ctx.settings.site_root
    if keys is not None:
        found = index.project_by_api_key(keys.api_key)
        print("Created a project. Its keys are shown once; keep them:", flush=True)
        if found is not None:
            print(f"  Project uuid:         {found[0].id}", flush=True)
        print(f"  API key (read-write): {keys.api_key}", flush=True)
        print(f"  API key (read-only):  {keys.api_key_readonly}", flush=True)
        print(f"  Ping key:             {keys.ping_key}", flush=True)
    else:
        # The keys are not shown again, but the uuid Prometheus' metrics URL needs is.
        projects = list(index.projects.values())
        for project in projects[:10]:
            log.info('project "%s": uuid %s, metrics at %s/projects/%s/metrics/<read-only key>',
                     project.name, project.id, site_root, project.id)  # fmt: skip
        if len(projects) > 10:
            log.info("and %d more projects (GET /api/v3/projects/ lists them)", len(projects) - 10)
    # One line, on stdout: scripts (and the tests) read the port from it.
    addresses = ", ".join(str(sock.getsockname()[0]) for sock in runtime.server.sockets)
    print(
        f"hcserver listening on port {runtime.server.port}; API at {site_root}/api/v3/ (bound to {addresses})",
        flush=True,
    )
    # Recovered and listening: under systemd's Type=notify, the unit is now started.
    systemd.notify("READY=1")

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down")
    systemd.notify("STOPPING=1")
    await runtime.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command != "serve":
        return cli_admin.run(args)
    try:
        settings = settings_from(args, dict(os.environ))
        alerts = AlertSettings.from_env(os.environ)
    except SettingsError as e:
        print(f"hcserver: {e}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        return asyncio.run(serve(settings, alerts))
    except STARTUP_ERRORS as e:
        # Something the operator can fix (the port is taken, the file is another server's, damaged or
        # not a store, ...): one line that says what, rather than a traceback. The runtime has
        # already stopped whatever it had started, so the process ends now and a supervisor sees it.
        print(f"hcserver: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
