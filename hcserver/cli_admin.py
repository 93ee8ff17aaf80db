"""The admin commands of `hcserver`: import-healthchecks, keys, projects, checks, export, import-json.

`add_commands(subparsers)` adds them to the parser of `hcserver.__main__`; `run(args)` runs the one
chosen and returns the exit status. Every command but `checks` opens the store offline: while a
server uses it, one line says so and the status is 2. Other failures print one line, status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from hcserver.admin.offline import AdminError
from hcserver.config import Settings, SettingsError
from hcserver.domain.projects import IssuedKeys, Project
from persistence.store import SchemaTooNew, StoreInUse, StoreUnusable

# The exit status when a server holds the store (as `serve` exits when it cannot start).
IN_USE = 2
FAILED = 1
_DB_HELP = "path of the SQLite store (HC_DB; default ./data/hcserver.sqlite3)"


def add_commands(commands: Any) -> None:
    """Add the admin subcommands to `commands` (the result of `add_subparsers`)."""
    p = commands.add_parser(
        "import-healthchecks",
        help="copy checks, with their UUIDs, history and state, from a Healthchecks server",
        description="Read a Healthchecks server's checks through its Management API v3 and write them into "
        "the store of a stopped hcserver, under the same UUIDs, in one transaction. Running it again "
        "updates the checks it made.",
    )
    p.add_argument("--url", required=True, help="the source's site root, such as https://healthchecks.io")
    p.add_argument("--api-key", required=True, help="the source project's read-write API key")
    p.add_argument("--ping-key", help="the source project's ping key, so /ping/<ping-key>/<slug> URLs keep working")
    p.add_argument("--project", help="uuid of the project to import into (default: the first)")
    p.add_argument("--db", help=_DB_HELP)
    p.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer (default 30)")

    p = commands.add_parser(
        "keys",
        help="rotate a project's keys, or list the projects",
        description="Make new keys for a project of a stopped server's store and print them once; the old "
        "ones stop working when the server starts again. Keys are stored hashed: they cannot be shown.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--rotate", choices=("api", "readonly", "ping", "all"), help="which keys to replace")
    which.add_argument("--show-project", action="store_true", help="list the projects' uuids and names")
    p.add_argument("--project", help="uuid of the project (default: the first)")
    p.add_argument("--db", help=_DB_HELP)

    p = commands.add_parser("projects", help="list, create or delete projects")
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="the projects' uuids, names and checks").add_argument("--db", help=_DB_HELP)
    create = actions.add_parser("create", help="make a project with new keys, printed once")
    create.add_argument("name")
    create.add_argument("--db", help=_DB_HELP)
    delete = actions.add_parser("delete", help="delete a project with its checks and their history")
    delete.add_argument("uuid")
    delete.add_argument("--db", help=_DB_HELP)

    p = commands.add_parser(
        "checks",
        help="a table of checks (works while the server runs)",
        description="The checks of the store's last commit, with status, last ping and schedule. Reads "
        "without locking, so it works while a server runs: the newest changes may not have reached the file.",
    )
    p.add_argument("--project", help="uuid of a project (default: every project)")
    p.add_argument("--status", choices=("new", "up", "grace", "down", "paused", "started"), help="only these")
    p.add_argument("--db", help=_DB_HELP)

    p = commands.add_parser("export", help="write the store as JSON to stdout")
    p.add_argument("--db", help=_DB_HELP)

    p = commands.add_parser("import-json", help="load a JSON dump made by hcserver export")
    p.add_argument("file", help="the dump ('-' for stdin)")
    p.add_argument("--db", help=_DB_HELP)


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    """Run the admin command `args.command`; its exit status."""
    environ = dict(os.environ) if env is None else env
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="hcserver: %(message)s")
    try:
        settings = Settings.from_env(environ)
        if getattr(args, "db", None):
            settings = settings.replace(db=args.db)
        handler = _COMMANDS[args.command]
        return handler(args, settings)
    except StoreInUse as exc:
        print(f"hcserver: {exc}", file=sys.stderr)
        return IN_USE
    except (AdminError, SettingsError, StoreUnusable, SchemaTooNew) as exc:
        print(f"hcserver: {exc}", file=sys.stderr)
        return FAILED


# -- import-healthchecks -------------------------------------------------------------------------


def import_healthchecks(args: argparse.Namespace, settings: Settings) -> int:
    from hcserver.admin.healthchecks import HealthchecksSource, SourceCheck, SourceError
    from hcserver.admin.importer import import_snapshot
    from hcserver.admin.offline import open_offline
    from persistence.lock import ensure_free

    # Refuse before asking the source anything: the store is the operator's to free first.
    ensure_free(settings.db)

    def progress(done: int, total: int, check: SourceCheck) -> None:
        print(
            f"  [{done}/{total}] {check.name or check.uuid}: {len(check.pings)} pings, {len(check.flips)} flips",
            file=sys.stderr,
            flush=True,
        )

    try:
        source = HealthchecksSource(args.url, args.api_key, timeout=args.timeout)
        print(f"reading {source.api_url('checks/')}", file=sys.stderr, flush=True)
        snapshot = source.fetch(progress)
    except SourceError as exc:
        raise AdminError(str(exc)) from None

    async def apply() -> int:
        async with open_offline(settings, dry_run=args.dry_run) as offline:
            result = await import_snapshot(offline, snapshot, project_id=args.project, ping_key=args.ping_key)
            if not args.dry_run and result.changed:
                await offline.commit()
            out = sys.stdout
            if result.keys is not None:
                if args.dry_run:
                    print("Would create a project (its keys are printed when it is made).", file=out)
                else:
                    print_keys(result.project, result.keys, out, "Created a project")
            verb = "would import" if args.dry_run else "imported"
            print(f"{verb} into project {result.project.name!r} ({result.project.id}) of {settings.db}", file=out)
            if result.ping_key_set:
                print(f"  ping key: {'would be' if args.dry_run else 'now'} the source's", file=out)
            rows = [
                (o.action, o.status, str(o.pings), str(o.flips), o.uuid, o.name + (f"  ({o.note})" if o.note else ""))
                for o in result.outcomes
            ]
            print_table(("ACTION", "STATUS", "PINGS", "FLIPS", "UUID", "NAME"), rows, out)
            counts: dict[str, int] = {}
            for o in result.outcomes:
                counts[o.action] = counts.get(o.action, 0) + 1
            summary = ", ".join(f"{n} {action}" for action, n in counts.items()) or "no checks"
            print(f"{len(result.outcomes)} checks: {summary}{' (dry run: nothing written)' if args.dry_run else ''}",
                  file=out)  # fmt: skip
            if result.channels:
                print("Channels are not imported (the source's API does not show their targets); recreate them here, "
                      "then assign them to the checks:", file=out)  # fmt: skip
                for name, kind, advice in result.channels:
                    print(f"  - {name!r} ({kind}): {advice}", file=out)
            return FAILED if any(o.action == "skipped" for o in result.outcomes) else 0

    return asyncio.run(apply())


# -- keys, projects -------------------------------------------------------------------------------


def keys(args: argparse.Namespace, settings: Settings) -> int:
    from hcserver.admin.offline import open_offline
    from hcserver.domain.projects import new_api_key, new_ping_key

    if args.show_project:
        return list_projects(args, settings)

    async def rotate() -> int:
        async with open_offline(settings) as offline:
            project = offline.project(args.project)
            hasher = offline.index.hasher
            new: list[tuple[str, str]] = []
            if args.rotate in ("api", "all"):
                key = new_api_key()
                project.api_key_hash = hasher.digest(key)
                new.append(("API key (read-write)", key))
            if args.rotate in ("readonly", "all"):
                key = new_api_key(readonly=True)
                project.api_key_readonly_hash = hasher.digest(key)
                new.append(("API key (read-only)", key))
            if args.rotate in ("ping", "all"):
                key = new_ping_key()
                project.ping_key_hash = hasher.digest(key)
                new.append(("Ping key", key))
            # The index is rebuilt from the store at the next start, which is when these take effect.
            offline.ctx.project_changed(project)
            await offline.commit()
        print(f"New keys of project {project.name!r} ({project.id}), shown once; keep them:")
        for label, key in new:
            print(f"  {(label + ':').ljust(21)} {key}")
        print("The old ones stop working when the server starts again.")
        return 0

    return asyncio.run(rotate())


def list_projects(args: argparse.Namespace, settings: Settings) -> int:
    """Projects, from the last commit (reading takes no lock, so this works beside a server)."""
    from hcserver.admin.offline import read_view

    view = read_view(settings.db)
    counts: dict[str, int] = {}
    for check in view.checks:
        counts[check.project_id] = counts.get(check.project_id, 0) + 1
    rows = [(p.id, str(counts.get(p.id, 0)), p.name) for p in view.projects]
    print_table(("UUID", "CHECKS", "NAME"), rows, sys.stdout)
    return 0


def projects(args: argparse.Namespace, settings: Settings) -> int:
    from hcserver.admin.offline import open_offline
    from hcserver.services import create_project, delete_project

    if args.action == "list":
        return list_projects(args, settings)

    async def change() -> int:
        async with open_offline(settings) as offline:
            if args.action == "create":
                project, issued = await create_project(offline.ctx, args.name)
                await offline.commit()
                print_keys(project, issued, sys.stdout, f"Created project {project.name!r}")
                return 0
            project = offline.project(args.uuid)
            n = offline.index.check_count(project.id)
            await delete_project(offline.ctx, project)
            await offline.commit()
            print(f"Deleted project {project.name!r} ({project.id}) and its {n} checks")
            return 0

    return asyncio.run(change())


# -- checks ----------------------------------------------------------------------------------------


def checks(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from hcserver.admin.offline import read_view
    from hcserver.web.dashboard_words import ago, display_status, schedule_words

    view = read_view(settings.db)
    names = {p.id: p.name for p in view.projects}
    if args.project is not None and args.project not in names:
        raise AdminError(f"{settings.db} has no project {args.project} (hcserver projects list shows them)")
    now = time.time()
    rows = []
    for check in sorted(view.checks, key=lambda c: (names.get(c.project_id, ""), c.name, c.uuid)):
        if args.project is not None and check.project_id != args.project:
            continue
        status = display_status(check, now)
        if args.status is not None and status != args.status:
            continue
        row = [status, ago(check.last_ping, now), schedule_words(check), check.uuid, check.name]
        if args.project is None and len(names) > 1:
            row.insert(3, names.get(check.project_id, check.project_id))
        rows.append(row)
    header = ["STATUS", "LAST PING", "SCHEDULE", "UUID", "NAME"]
    if args.project is None and len(names) > 1:
        header.insert(3, "PROJECT")
    age = "" if view.age_s is None else f", written {ago(now - view.age_s, now)}"
    print(
        f"As of the store's last commit{age}: a running server commits its changes every "
        f"{settings.flush_interval_ms} ms (HC_FLUSH_INTERVAL_MS), so the last moment's pings may be missing."
    )
    print_table(header, rows, sys.stdout)
    if view.skipped:
        print(f"({view.skipped} damaged rows skipped)")
    return 0


# -- export, import-json ----------------------------------------------------------------------------


def export(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from hcserver.admin.dump import export as export_store
    from hcserver.admin.offline import open_offline

    if not os.path.exists(settings.db):
        raise AdminError(f"{settings.db} does not exist: point --db (HC_DB) at the store file")

    async def dump() -> dict[str, Any]:
        async with open_offline(settings) as offline:
            return await export_store(offline)

    json.dump(asyncio.run(dump()), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def import_json(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from hcserver.admin.dump import load
    from hcserver.admin.offline import open_offline
    from persistence.lock import ensure_free

    ensure_free(settings.db)
    try:
        if args.file == "-":
            dump = json.load(sys.stdin)
        else:
            with open(args.file, encoding="utf-8") as f:
                dump = json.load(f)
    except OSError as exc:
        raise AdminError(f"cannot read {args.file}: {exc.strerror}") from None
    except ValueError as exc:
        raise AdminError(f"{args.file} is not JSON: {exc}") from None

    async def apply() -> int:
        async with open_offline(settings) as offline:
            result = await load(offline, dump)
            await offline.commit()
        for project, issued in result.new_keys:
            print_keys(project, issued, sys.stdout, f"Project {project.name!r} has new keys on this store")
        kept = f"; {result.kept} checks kept (pinged here since)" if result.kept else ""
        print(
            f"Loaded {result.projects} projects, {result.channels} channels, {result.checks} checks, "
            f"{result.pings} pings and {result.flips} flips into {settings.db}{kept}"
        )
        return 0

    return asyncio.run(apply())


# -- output --------------------------------------------------------------------------------------


def print_keys(project: Project, keys: IssuedKeys, out: TextIO, title: str) -> None:
    print(f"{title}. Its keys are shown once; keep them:", file=out)
    print(f"  Project uuid:         {project.id}", file=out)
    print(f"  API key (read-write): {keys.api_key}", file=out)
    print(f"  API key (read-only):  {keys.api_key_readonly}", file=out)
    print(f"  Ping key:             {keys.ping_key}", file=out)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Columns as wide as their widest cell; the last one is not padded."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)


_COMMANDS = {
    "import-healthchecks": import_healthchecks,
    "keys": keys,
    "projects": projects,
    "checks": checks,
    "export": export,
    "import-json": import_json,
}
