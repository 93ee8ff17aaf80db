"""Podman as these machines run it: a base image made from Debian's packages, builds with chroot
isolation, containers under runc with cgroupfs.

No image registry is reachable here, so the image's default base (python:3.12-slim) cannot be
pulled: `base_image()` debootstraps a minimal Debian with python3 and python3-venv from the mirror
in the machine's apt sources and imports it, and the Dockerfile is built on it with
`--build-arg BASE=...`. The root file system is cached under build/container/, one per day, and
the imported image is kept between runs.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.persistence.helpers import ROOT

CACHE = ROOT / "build" / "container"
BASE_REPO = "localhost/hcserver-test-base"
# The global flags every podman command here gets: these machines' cgroup setup rejects systemd's
# cgroup manager (and crun), so cgroupfs and runc.
PODMAN = ("podman", "--cgroup-manager", "cgroupfs")
CERTS = "/etc/ssl/certs"
# pip in the build reaches the package index through the host's network, whose TLS-inspecting
# proxy only the host's certificates trust; HEALTHCHECK needs the Docker image format (OCI has none).
BUILD_FLAGS = (
    "--isolation=chroot",
    "--volume",
    f"{CERTS}:{CERTS}:ro",
    "--build-arg",
    f"PIP_CERT={CERTS}/ca-certificates.crt",
    "--format",
    "docker",
)
RUN_FLAGS = ("--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


class Unavailable(Exception):
    """Podman or what it needs is not on this machine."""


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one podman command, bounded in time; a failure raises with what it printed."""
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def missing_tools() -> list[str]:
    found = {
        tool: shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
        for tool in ("podman", "runc", "debootstrap")
    }
    return [tool for tool, path in found.items() if path is None]


def debian_mirror(codename: str, sources: Sequence[Path] | None = None) -> str:
    """The first mirror in the apt sources that serves `codename` main (one-line or deb822 form)."""
    if sources is None:
        apt = Path("/etc/apt")
        sources = [
            apt / "sources.list",
            *sorted((apt / "sources.list.d").glob("*.list")),
            *sorted((apt / "sources.list.d").glob("*.sources")),
        ]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith(("#", " ")):
                        name, _, value = line.partition(":")
                        fields[name.strip().lower()] = value.split()
                wanted = ("deb", "types"), (codename, "suites"), ("main", "components")
                if fields.get("uris") and all(word in fields.get(name, []) for word, name in wanted):
                    return fields["uris"][0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 4 and words[0] == "deb" and words[2] == codename and "main" in words[3:]:
                    return words[1]
    raise Unavailable(f"no Debian mirror for {codename} main in the apt sources")


def host_codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.partition("=")[2].strip().strip('"')
    raise Unavailable("/etc/os-release names no Debian release")


def base_image(today: datetime.date | None = None) -> str:
    """The base image of the day: kept in podman's store, else imported from the cached root file
    system, else debootstrapped (about 40 s) and cached. Older days' caches are removed."""
    codename = host_codename()
    stamp = (today or datetime.date.today()).strftime("%Y%m%d")
    tag = f"{BASE_REPO}:{codename}-{stamp}"
    if podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"debian-py-{codename}-{stamp}.tar"
    for old in CACHE.glob("debian-py-*.tar"):
        if old != tarball:
            old.unlink()
    if not tarball.exists():
        rootfs = CACHE / f"rootfs-{os.getpid()}"
        shutil.rmtree(rootfs, ignore_errors=True)
        try:
            debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
            packages = "--include=python3,python3-venv,ca-certificates"
            command = [debootstrap, "--variant=minbase", packages, codename, str(rootfs), debian_mirror(codename)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise AssertionError(
                    f"debootstrap exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
                )
            partial = tarball.with_suffix(".part")
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=300)
            partial.rename(tarball)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
    podman("import", str(tarball), tag, timeout=300)
    for line in podman("images", "--format", "{{.Repository}}:{{.Tag}}", BASE_REPO).stdout.split():
        if line != tag:
            podman("rmi", line, check=False)
    return tag
