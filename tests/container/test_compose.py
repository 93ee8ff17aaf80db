"""compose.yaml agrees with the files it uses: the Dockerfile's volume and port, and the nginx
file in deploy/nginx/ (its upstream, its ports, HTTP/2), whose own behaviour
tests/production/test_nginx.py checks. No compose tool runs here."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.persistence.helpers import ROOT


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_hcserver_keeps_its_store_in_a_named_volume() -> None:
    services = compose()["services"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "VOLUME /data" in dockerfile and "HC_DB=/data/" in dockerfile
    volume, _, target = services["hcserver"]["volumes"][0].partition(":")
    assert target == "/data" and volume in compose()["volumes"]
    assert services["hcserver"]["build"] == "."


def test_nginx_runs_the_deploy_file_in_hcservers_network() -> None:
    services = compose()["services"]
    nginx, hcserver = services["nginx"], services["hcserver"]
    assert nginx["network_mode"] == "service:hcserver"
    assert nginx["depends_on"]["hcserver"]["condition"] == "service_healthy"
    source = nginx["volumes"][0].split(":")[0]
    conf = (ROOT / source).read_text()
    assert (ROOT / source).resolve() == (ROOT / "deploy" / "nginx" / "hcserver.conf").resolve()

    # nginx reaches hcserver on its loopback, from the address hcserver trusts.
    upstream = re.search(r"upstream hcserver \{\s*server ([\d.]+):(\d+);", conf)
    assert upstream and upstream[2] == "8000" and "EXPOSE 8000" in (ROOT / "Dockerfile").read_text()
    assert hcserver["environment"]["HC_HOST"] == upstream[1]
    assert hcserver["environment"]["HC_TRUSTED_PROXIES"] == upstream[1]
    # The ports nginx listens on are the ones published, TLS with HTTP/2.
    listens = {int(port) for port in re.findall(r"^\s*listen (\d+)\b", conf, re.MULTILINE)}
    assert {int(p.split(":")[-1]) for p in hcserver["ports"]} == listens == {80, 443}
    assert re.search(r"^\s*listen 443 ssl http2;", conf, re.MULTILINE)
    site = hcserver["environment"]["SITE_ROOT"]
    assert hcserver["environment"]["PING_ENDPOINT"] == site + "/ping/"
    assert f"server_name {site.removeprefix('https://')};" in conf
