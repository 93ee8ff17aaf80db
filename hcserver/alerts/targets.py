"""The hosts a channel sends alerts to, and the check that refuses private ones when a channel is saved.

The private-address rule of `safety.py` applies at delivery. Checking the same hosts when a channel is
created or changed turns a channel that could never deliver into a 400 answer; DNS answers can change
in between, so delivery checks again.

A webhook URL names its host plainly. For an Apprise URL the host is read the way Apprise reads it:
the plugin Apprise makes from the URL says whether its URL names a server (a `host` token in its URL
templates) and holds that host, so `ntfy://10.0.0.5/topic`, `gotify://`, `mmost://`, `json://` and
every other self-hosted scheme are covered, while `ntfy://topic` (the public ntfy.sh) and hosted
services whose URLs hold only tokens (`slack://`, `tgram://`) name no host and need no lookup.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from hcserver.alerts.channels import AppriseSpec, ChannelInvalid, ChannelSpec, WebhookSpec
from hcserver.alerts.safety import FetchError, RefusedAddress, ip_literal, is_public, resolve_checked

# Apprise services whose URL "host" is not a server they connect to: the sender's mail domain
# (mailgun, sparkpost, sendpulse, smtp2go) or an account id (wechat). They call their own API.
_HOST_IS_NOT_A_SERVER = frozenset({"mailgun", "sparkpost", "sendpulse", "smtp2go", "wechat"})


def _zulip(plugin: Any) -> list[str]:
    # "zulip://bot@org/..." posts to org.zulipchat.com; "zulip://bot@chat.example.org/..." to that host.
    org, hostname = getattr(plugin, "organization", ""), getattr(plugin, "hostname", "")
    return [f"{org}.{hostname}"] if org and hostname else []


def _acs(plugin: Any) -> list[str]:
    endpoint = getattr(plugin, "endpoint", "")
    return [endpoint] if isinstance(endpoint, str) and endpoint else []


def _nostr(plugin: Any) -> list[str]:
    relays = getattr(plugin, "relays", None) or []
    hosts = [urlsplit(r if "://" in r else "wss://" + r).hostname for r in relays if isinstance(r, str)]
    return [h for h in hosts if h]


# Services that take their server in a field other than the URL's host.
_OTHER_SERVER_FIELDS: dict[str, Callable[[Any], list[str]]] = {"zulip": _zulip, "acs": _acs, "nostr": _nostr}


def load_apprise_plugin(url: str) -> Any | None:
    """The Apprise plugin for `url`, None when Apprise cannot read the URL. Raises ImportError when
    Apprise is not installed. It blocks (the first call loads all of Apprise's plugins): run it in a
    thread. The plugin sends from the calling thread, so `guarded_connections` covers it."""
    # Imported by name, not with an import statement: apprise is an optional extra, and this way the
    # type check is the same with or without it installed.
    apprise = importlib.import_module("apprise")
    return apprise.Apprise.instantiate(url, asset=apprise.AppriseAsset(async_mode=False))


def apprise_hosts(url: str, plugin: Any) -> list[str]:
    """The hosts the plugin made from `url` connects to, as far as its URL says, without brackets."""
    scheme = urlsplit(url).scheme.lower()
    hosts: list[str] = []
    smtp_host = getattr(plugin, "smtp_host", None)
    if isinstance(smtp_host, str) and smtp_host:
        # Email plugins: `host` is the mail domain, the server is the SMTP host (given, or derived).
        hosts.append(smtp_host)
    elif "host" in getattr(type(plugin), "template_tokens", {}) and scheme not in _HOST_IS_NOT_A_SERVER:
        host = getattr(plugin, "host", None)
        if isinstance(host, str) and host:
            hosts.append(host)
    extra = _OTHER_SERVER_FIELDS.get(scheme)
    if extra is not None:
        hosts += extra(plugin)
    out: list[str] = []
    for host in hosts:
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if bare not in out:
            out.append(bare)
    return out


async def channel_hosts(spec: ChannelSpec) -> list[tuple[str, str]]:
    """(field, host) for each host the channel sends to. Email goes to the operator's SMTP server."""
    if isinstance(spec, WebhookSpec):
        out = []
        for field, target in (("url_down", spec.down), ("url_up", spec.up)):
            host = urlsplit(target.url).hostname if target.url else None
            # A placeholder in the host is filled in at delivery, which checks the result.
            if host and "$" not in host:
                out.append((field, host))
        return out
    if isinstance(spec, AppriseSpec):
        try:
            plugin = await asyncio.to_thread(load_apprise_plugin, spec.url)
        except ImportError:
            return []  # delivery fails with "apprise is not installed"
        if plugin is None:
            return []  # delivery fails with "Invalid Apprise URL"
        return [("url", host) for host in apprise_hosts(spec.url, plugin)]
    return []


async def check_channel_targets(spec: ChannelSpec, *, allow_private: bool, timeout: float) -> None:
    """Raise `ChannelInvalid` when delivery would refuse a host of this channel as private.

    A literal address is judged as it is; a name is resolved, and refused when an answer is private.
    A name that does not resolve (yet), or not within `timeout`, is accepted: delivery decides.
    """
    if allow_private:
        return
    for field, host in await channel_hosts(spec):
        ip = ip_literal(host)
        if ip is not None:
            if not is_public(ip):
                raise ChannelInvalid(f"json validation error: {field} points to a private address {ip}")
            continue
        try:
            await resolve_checked(host, 0, allow_private=False, timeout=timeout)
        except RefusedAddress as exc:
            raise ChannelInvalid(
                f"json validation error: {field} points to a private address ({host} is {exc.address})"
            ) from None
        except FetchError:
            pass
