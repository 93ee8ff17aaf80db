"""Sending one alert through one channel: `deliver(channel, ctx, settings)`.

`deliver` makes one attempt and never raises for delivery problems: it returns a `DeliveryResult`
saying whether it worked and, if not, whether a retry could help. Retrying, backing off and
disabling the channel are the caller's business (see `Channel.record_delivery`).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib

from hcserver.alerts.channels import AppriseSpec, Channel, EmailSpec, WebhookSpec
from hcserver.alerts.results import DeliveryResult
from hcserver.alerts.safety import (
    FetchError,
    IPAddress,
    RefusedAddress,
    guarded_connections,
    resolve_checked,
    safe_fetch,
)
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.targets import apprise_hosts, load_apprise_plugin
from hcserver.alerts.templates import AlertContext, clean, render_body, render_header, render_url
from hcserver.domain.checks import DOWN, UP
from hcserver.views import isostring

log = logging.getLogger(__name__)

USER_AGENT = "hcserver"
# What the reference counts as a successful webhook call.
OK_CODES = (200, 201, 202, 204)
# 4xx answers that say "later", not "never".
RETRYABLE_4XX = (408, 429)
# How much of the last ping's body goes into an email or Apprise message.
MAX_BODY_IN_MESSAGE = 4000


def is_noop(channel: Channel, status: str) -> bool:
    """True when the channel sends nothing for this status (a webhook without a URL for it)."""
    spec = channel.spec
    return isinstance(spec, WebhookSpec) and not spec.target(status).url


async def deliver(
    channel: Channel, ctx: AlertContext, settings: AlertSettings, *, timeout: float | None = None
) -> DeliveryResult:
    """Send the alert described by `ctx` through `channel`, within `timeout` (default: settings').

    Raises ValueError only for a `ctx.status` other than "up"/"down"; every delivery problem comes
    back as a failed `DeliveryResult`.
    """
    limit = settings.timeout if timeout is None else timeout
    if ctx.status not in (UP, DOWN):
        # The caller's bug, not the channel's: failing the delivery would wrongly blame the channel.
        raise ValueError(f"alerts are sent for flips to up or down, not {ctx.status!r}")
    if is_noop(channel, ctx.status):
        return DeliveryResult.success()
    spec = channel.spec
    try:
        if isinstance(spec, WebhookSpec):
            return await _webhook(spec, ctx, settings, limit)
        if isinstance(spec, EmailSpec):
            return await _email(spec, ctx, settings, limit)
        return await _apprise(spec, ctx, settings, limit)
    except FetchError as exc:
        return DeliveryResult.failure(exc.message, exc.permanent)
    except Exception as exc:
        # A bug in here must not take the delivery queue down with it; the channel shows the error.
        log.exception("delivery through channel %s failed", channel.id)
        return DeliveryResult.failure(f"Unexpected error: {type(exc).__name__}")


# -- webhook ----------------------------------------------------------------------------------------


async def _webhook(spec: WebhookSpec, ctx: AlertContext, settings: AlertSettings, timeout: float) -> DeliveryResult:
    target = spec.target(ctx.status)
    url = render_url(target.url, ctx)
    headers = {name: render_header(value, ctx) for name, value in target.headers}
    body: bytes | None = None
    # Like the reference, the body template is only used by methods that carry a body.
    if target.body and target.method in ("POST", "PUT"):
        # "replace": the template itself may hold a lone surrogate that UTF-8 cannot carry.
        body = render_body(target.body, ctx).encode("utf-8", "replace")
    result = await safe_fetch(
        target.method,
        url,
        headers=headers,
        body=body,
        allow_private=settings.allow_private,
        timeout=timeout,
        user_agent=USER_AGENT,
    )
    if result.code in OK_CODES:
        return DeliveryResult.success()
    permanent = 400 <= result.code < 500 and result.code not in RETRYABLE_4XX
    return DeliveryResult.failure(f"Received status code {result.code}", permanent)


# -- the text of email and Apprise alerts --------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def alert_title(ctx: AlertContext) -> str:
    """`DOWN | My job`: the email subject and the Apprise title."""
    return clean(f"{ctx.status.upper()} | {_one_line(ctx.display_name)}")


def alert_text(ctx: AlertContext, max_body: int = MAX_BODY_IN_MESSAGE) -> str:
    """The plain-text alert: which check, its new status and when, and what its last ping said."""
    lines = [f'The check "{ctx.display_name}" is {ctx.status.upper()}.', ""]
    if ctx.project_name:
        lines.append(f"Project:     {ctx.project_name}")
    lines += [
        f"Check:       {ctx.display_name}",
        f"UUID:        {ctx.code}",
        f"Status:      {ctx.status}",
        f"Changed at:  {isostring(ctx.now)}",
        f"Last ping:   {isostring(ctx.last_ping) or 'never'}",
    ]
    if ctx.tags:
        lines.append(f"Tags:        {ctx.tags}")
    if ctx.exitstatus is not None:
        lines.append(f"Exit status: {ctx.exitstatus}")
    text = ctx.body_text()
    if text:
        if len(text) > max_body:
            text = text[:max_body] + "\n[truncated]"
        lines += ["", "Last ping body:", "", text.rstrip("\r\n")]
    return clean("\n".join(lines) + "\n")


# -- email ------------------------------------------------------------------------------------------


def build_email(ctx: AlertContext, to: str, settings: AlertSettings) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.default_from_email
    msg["To"] = to
    msg["Subject"] = alert_title(ctx)
    msg["Date"] = formatdate(usegmt=True)
    domain = settings.default_from_email.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    # Auto-Submitted keeps vacation responders from answering an alert (RFC 3834).
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(alert_text(ctx))
    return msg


async def _email(spec: EmailSpec, ctx: AlertContext, settings: AlertSettings, timeout: float) -> DeliveryResult:
    msg = build_email(ctx, spec.email, settings)
    try:
        # aiosmtplib's timeout is per step; the outer one bounds the whole conversation.
        async with asyncio.timeout(timeout):
            await aiosmtplib.send(
                msg,
                hostname=settings.email_host,
                port=settings.email_port,
                username=settings.email_host_user or None,
                password=settings.email_host_password or None,
                start_tls=settings.email_use_tls,
                timeout=timeout,
            )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        # The one SMTP failure that is about the channel itself: its address. 5xx means "never".
        first = exc.recipients[0]
        return DeliveryResult.failure(f"SMTP error {first.code}: {first.message}", 500 <= first.code < 600)
    except aiosmtplib.SMTPResponseException as exc:
        # Sender refused, authentication, data rejected: the server's settings, not the channel's.
        return DeliveryResult.failure(f"SMTP error {exc.code}: {exc.message}")
    except TimeoutError:
        return DeliveryResult.failure("Connection timed out")
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError):
        return DeliveryResult.failure("Connection failed")
    except aiosmtplib.SMTPException as exc:
        return DeliveryResult.failure(f"SMTP error: {exc.message}")
    return DeliveryResult.success()


# -- apprise ----------------------------------------------------------------------------------------


def _send_apprise(plugin: Any, ctx: AlertContext, guard: bool) -> tuple[bool, IPAddress | None]:
    """Send through Apprise (blocking); with `guard`, refuse its connections to private addresses.

    Returns whether Apprise sent it, and the address the guard refused, if it refused one.
    """
    apprise = importlib.import_module("apprise")
    notifier = apprise.Apprise(asset=plugin.asset)
    notifier.add(plugin)
    notify_type = apprise.NotifyType.SUCCESS if ctx.status == UP else apprise.NotifyType.FAILURE
    if not guard:
        return bool(notifier.notify(body=alert_text(ctx), title=alert_title(ctx), notify_type=notify_type)), None
    with guarded_connections() as connections:
        sent = notifier.notify(body=alert_text(ctx), title=alert_title(ctx), notify_type=notify_type)
    return bool(sent), connections.refused


async def _apprise(spec: AppriseSpec, ctx: AlertContext, settings: AlertSettings, timeout: float) -> DeliveryResult:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        # Apprise blocks (its plugins, and loading them the first time); a thread keeps the event loop
        # free. On timeout the thread runs on until Apprise's own socket timeouts end it, but nothing
        # waits for it.
        try:
            plugin = await asyncio.wait_for(asyncio.to_thread(load_apprise_plugin, spec.url), timeout=timeout)
        except ImportError:
            return DeliveryResult.failure("apprise is not installed", permanent=True)
        if plugin is None:
            return DeliveryResult.failure("Invalid Apprise URL", permanent=True)
        if not settings.allow_private:
            # Every host the URL names, checked before Apprise connects anywhere. This cannot pin the
            # address as webhooks do, so the guard around the sending checks each connection again.
            for host in apprise_hosts(spec.url, plugin):
                await resolve_checked(host, 0, allow_private=False, timeout=deadline - loop.time())
        sent, refused = await asyncio.wait_for(
            asyncio.to_thread(_send_apprise, plugin, ctx, not settings.allow_private),
            timeout=max(deadline - loop.time(), 0.0),
        )
    except TimeoutError:
        return DeliveryResult.failure("Connection timed out")
    if refused is not None:
        return DeliveryResult.failure(RefusedAddress(refused).message, permanent=True)
    if not sent:
        return DeliveryResult.failure("Apprise could not deliver the notification")
    return DeliveryResult.success()
