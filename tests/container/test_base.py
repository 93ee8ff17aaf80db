"""Where the test's base image comes from: the Debian mirror named in the apt sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.container.podman import Unavailable, debian_mirror

DEB822 = """\
Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
"""


def test_the_mirror_comes_from_deb822_sources(tmp_path: Path) -> None:
    security = tmp_path / "security.sources"
    security.write_text(DEB822.split("\n\n")[1])
    main = tmp_path / "debian.sources"
    main.write_text(DEB822)
    assert debian_mirror("bookworm", [security, main]) == "http://mirror.invalid/debian"


def test_the_mirror_comes_from_one_line_sources(tmp_path: Path) -> None:
    listed = tmp_path / "sources.list"
    listed.write_text(
        "# deb http://old.invalid/debian bookworm main\n"
        "deb-src http://src.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/debian bookworm main contrib\n"
    )
    assert debian_mirror("bookworm", [tmp_path / "absent.list", listed]) == "http://mirror.invalid/debian"


def test_no_mirror_for_the_release_says_so(tmp_path: Path) -> None:
    listed = tmp_path / "sources.list"
    listed.write_text("deb http://mirror.invalid/debian trixie main\n")
    with pytest.raises(Unavailable, match="bookworm"):
        debian_mirror("bookworm", [listed])
