"""Notification channels: what a project alerts through, and the validation of the JSON that makes one.

A channel is an entity (its delivery state changes); its `spec` is a frozen value, one class per kind.
Three forms exist: the API's JSON (`channel_to_json`, `channel_summary` in hcserver/views.py), the plain record that the
persistence codec packs (`Channel.to_record` / `Channel.from_record`), and the create/update request
body that `parse_channel_body` / `parse_channel_spec` validate.

    >>> spec = parse_channel_spec("webhook", {"url_down": "https://example.org/$CODE"})
    >>> spec.down.url, spec.down.method, spec.up.url
    ('https://example.org/$CODE', 'GET', '')
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hcserver.alerts.results import DeliveryResult
from hcserver.domain.checks import UP

WEBHOOK, EMAIL, APPRISE = "webhook", "email", "apprise"
KINDS = (WEBHOOK, EMAIL, APPRISE)
METHODS = ("GET", "POST", "PUT")

# Length limits follow the reference's web forms (name 100, URL 1000, body 1000, header 1000,
# Apprise URL 512); the email limit is the longest address SMTP can carry.
MAX_NAME = 100
MAX_URL = 1000
MAX_BODY = 1000
MAX_HEADER = 1000
MAX_HEADERS = 50
MAX_EMAIL = 254
MAX_APPRISE_URL = 512

# These patterns are used with fullmatch, never with "^...$": "$" also matches before a trailing "\n".
# An RFC 7230 header name ("token"); anything else would let a value smuggle a second header.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A plausible address, not all of RFC 5322: an ASCII local part of RFC 5322 "atext" and dots (no quoted
# forms; non-ASCII would need SMTPUTF8), one @, and a dotted domain of letters/digits/hyphens (or
# "localhost", or an address literal, for self-hosted mail setups).
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}")
_DOMAIN_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_APPRISE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")


class ChannelInvalid(ValueError):
    """A create/update body the API must answer with 400; `message` is the text clients see."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _invalid(what: str) -> ChannelInvalid:
    return ChannelInvalid(f"json validation error: {what}")


# -- spec values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One direction (down or up) of a webhook. An empty `url` means "send nothing for this direction".

    `headers` is a tuple of (name, value) pairs rather than a dict so the value stays immutable.
    """

    url: str = ""
    method: str = "GET"
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    down: WebhookTarget = WebhookTarget()
    up: WebhookTarget = WebhookTarget()

    def target(self, status: str) -> WebhookTarget:
        return self.up if status == UP else self.down

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for suffix, t in (("down", self.down), ("up", self.up)):
            out[f"url_{suffix}"] = t.url
            out[f"method_{suffix}"] = t.method
            out[f"body_{suffix}"] = t.body
            out[f"headers_{suffix}"] = dict(t.headers)
        return out


@dataclass(frozen=True, slots=True)
class EmailSpec:
    email: str

    def to_record(self) -> dict[str, Any]:
        return {"email": self.email}


@dataclass(frozen=True, slots=True)
class AppriseSpec:
    url: str

    def to_record(self) -> dict[str, Any]:
        return {"url": self.url}


ChannelSpec = WebhookSpec | EmailSpec | AppriseSpec


def kind_of(spec: ChannelSpec) -> str:
    if isinstance(spec, WebhookSpec):
        return WEBHOOK
    if isinstance(spec, EmailSpec):
        return EMAIL
    return APPRISE


# -- validation --------------------------------------------------------------------------------------


def _string(body: Mapping[str, Any], key: str, max_len: int, default: str = "") -> str:
    value = body.get(key, default)
    if value is None:
        # The reference's clients send null for "not set" in places; treat it as the default.
        return default
    if not isinstance(value, str):
        raise _invalid(f"{key} is not a string")
    if len(value) > max_len:
        raise _invalid(f"{key} is too long")
    return value


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host. Placeholders like `$NAME` may appear anywhere."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is out of range or not a number
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def is_plausible_email(address: str) -> bool:
    if address.count("@") != 1 or len(address) > MAX_EMAIL:
        return False
    local, domain = address.split("@")
    if not _EMAIL_LOCAL.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    if domain.startswith("[") and domain.endswith("]"):
        return bool(re.fullmatch(r"\[[0-9A-Fa-f:.]+\]", domain))
    labels = domain.split(".")
    if domain.lower() != "localhost" and len(labels) < 2:
        return False
    return all(_DOMAIN_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def _headers(body: Mapping[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise _invalid(f"{key} is not an object")
    if len(value) > MAX_HEADERS:
        raise _invalid(f"{key} is too long")
    out: list[tuple[str, str]] = []
    for name, v in value.items():
        if len(name) > MAX_HEADER:
            raise _invalid(f"a key in '{key}' is too long")
        if not _HEADER_NAME.fullmatch(name):
            raise _invalid(f"a key in '{key}' has unexpected value")
        if not isinstance(v, str):
            raise _invalid(f"a value in '{key}' is not a string")
        if len(v) > MAX_HEADER:
            raise _invalid(f"a value in '{key}' is too long")
        if "\r" in v or "\n" in v:
            raise _invalid(f"a value in '{key}' has unexpected value")
        out.append((name, v))
    return tuple(out)


def _webhook_target(body: Mapping[str, Any], suffix: str) -> WebhookTarget:
    url = _string(body, f"url_{suffix}", MAX_URL)
    if url and not is_http_url(url):
        raise _invalid(f"url_{suffix} is not a valid URL")
    method = _string(body, f"method_{suffix}", 10, "GET")
    if method not in METHODS:
        raise _invalid(f"method_{suffix} has unexpected value")
    text = _string(body, f"body_{suffix}", MAX_BODY)
    return WebhookTarget(url=url, method=method, body=text, headers=_headers(body, f"headers_{suffix}"))


def parse_channel_spec(kind: object, body: Mapping[str, Any]) -> ChannelSpec:
    """Validate the kind-specific fields of a create/update body; raise `ChannelInvalid` if wrong.

    Fields of other kinds and unknown keys are ignored, as the reference's API ignores unknown keys.
    """
    if kind == WEBHOOK:
        spec = WebhookSpec(down=_webhook_target(body, "down"), up=_webhook_target(body, "up"))
        if not spec.down.url and not spec.up.url:
            raise _invalid("url_down and url_up are both empty")
        return spec
    if kind == EMAIL:
        if "email" not in body:
            raise _invalid("key email absent in value")
        address = _string(body, "email", MAX_EMAIL)
        if not is_plausible_email(address):
            raise _invalid("email is not a valid email address")
        return EmailSpec(email=address)
    if kind == APPRISE:
        if "url" not in body:
            raise _invalid("key url absent in value")
        url = _string(body, "url", MAX_APPRISE_URL)
        if not _APPRISE_URL.fullmatch(url):
            raise _invalid("url is not a valid URL")
        return AppriseSpec(url=url)
    if isinstance(kind, str) or kind is None:
        raise _invalid(f"kind must be one of: {', '.join(sorted(KINDS))}")
    raise _invalid("kind is not a string")


@dataclass(frozen=True, slots=True)
class ChannelInput:
    """A validated create/update body."""

    name: str
    kind: str
    spec: ChannelSpec


def parse_channel_body(body: object, current: Channel | None = None) -> ChannelInput:
    """Validate a whole create (`current` None) or update body.

    On update, keys left out keep their current values (like the reference's check updates); a body
    that changes the kind must then carry that kind's fields.
    """
    if not isinstance(body, dict):
        raise _invalid("value is not an object")
    name = _string(body, "name", MAX_NAME, current.name if current else "")
    if "kind" in body:
        kind = body["kind"]
    elif current is not None:
        kind = current.kind
    else:
        raise _invalid("key kind absent in value")
    fields: Mapping[str, Any] = body
    if current is not None and kind == current.kind:
        fields = {**current.spec.to_record(), **body}
    spec = parse_channel_spec(kind, fields)
    return ChannelInput(name=name, kind=kind_of(spec), spec=spec)


def spec_from_record(kind: str, record: Mapping[str, Any]) -> ChannelSpec:
    """Rebuild a stored spec without re-validating it: rules may have tightened since it was saved."""
    if kind == WEBHOOK:

        def target(suffix: str) -> WebhookTarget:
            headers = record.get(f"headers_{suffix}") or {}
            return WebhookTarget(
                url=str(record.get(f"url_{suffix}", "")),
                method=str(record.get(f"method_{suffix}", "GET")),
                body=str(record.get(f"body_{suffix}", "")),
                headers=tuple((str(k), str(v)) for k, v in headers.items()),
            )

        return WebhookSpec(down=target("down"), up=target("up"))
    if kind == EMAIL:
        return EmailSpec(email=str(record["email"]))
    if kind == APPRISE:
        return AppriseSpec(url=str(record["url"]))
    raise ValueError(f"unknown channel kind {kind!r}")


# -- the entity --------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Channel:
    """A project's notification channel.

    `last_notify` is the epoch of the last delivery attempt, `last_error` its error ("" when it
    worked), and `disabled` is set by a permanent error: the notifier stops using the channel until
    the user updates it.
    """

    id: str
    project_id: str
    name: str
    kind: str
    spec: ChannelSpec
    created: float
    last_notify: float | None = None
    last_error: str = ""
    disabled: bool = False

    @classmethod
    def create(cls, project_id: str, body: object, now: float, channel_id: str | None = None) -> Channel:
        """Validate a create body and make the channel (a fresh uuid4 unless `channel_id` is given)."""
        data = parse_channel_body(body)
        return cls(
            id=channel_id or str(uuid.uuid4()),
            project_id=project_id,
            name=data.name,
            kind=data.kind,
            spec=data.spec,
            created=now,
        )

    def update(self, body: object) -> None:
        """Validate an update body and apply it."""
        self.apply(parse_channel_body(body, current=self))

    def apply(self, data: ChannelInput) -> None:
        """Apply a validated update body. A changed spec re-enables a disabled channel."""
        if data.spec != self.spec:
            self.disabled = False
            self.last_error = ""
        self.name, self.kind, self.spec = data.name, data.kind, data.spec

    def record_delivery(self, result: DeliveryResult, now: float) -> None:
        """Remember the outcome of a delivery attempt, as the API's last_notify/last_error show it."""
        self.last_notify = now
        self.last_error = "" if result.ok else result.error
        if result.permanent and not result.ok:
            self.disabled = True

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "kind": self.kind,
            "spec": self.spec.to_record(),
            "created": self.created,
            "last_notify": self.last_notify,
            "last_error": self.last_error,
            "disabled": self.disabled,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Channel:
        kind = str(record["kind"])
        last_notify = record.get("last_notify")
        return cls(
            id=str(record["id"]),
            project_id=str(record["project_id"]),
            name=str(record.get("name", "")),
            kind=kind,
            spec=spec_from_record(kind, record.get("spec") or {}),
            created=float(record["created"]),
            last_notify=None if last_notify is None else float(last_notify),
            last_error=str(record.get("last_error", "")),
            disabled=bool(record.get("disabled", False)),
        )
