"""Alert channels and the transports that deliver through them (webhook, email, Apprise).

The caller (the scheduler's delivery queue) builds an `AlertContext` for a flip and awaits
`deliver(channel, ctx, settings)` for each of the check's channels.
"""

from __future__ import annotations

from hcserver.alerts.channels import (
    APPRISE,
    EMAIL,
    KINDS,
    WEBHOOK,
    AppriseSpec,
    Channel,
    ChannelInput,
    ChannelInvalid,
    ChannelSpec,
    EmailSpec,
    WebhookSpec,
    WebhookTarget,
    channel_summary,
    channel_to_json,
    parse_channel_body,
    parse_channel_spec,
)
from hcserver.alerts.results import DeliveryResult
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.templates import AlertContext
from hcserver.alerts.transports import deliver, is_noop

__all__ = [
    "APPRISE",
    "EMAIL",
    "KINDS",
    "WEBHOOK",
    "AlertContext",
    "AlertSettings",
    "AppriseSpec",
    "Channel",
    "ChannelInput",
    "ChannelInvalid",
    "ChannelSpec",
    "DeliveryResult",
    "EmailSpec",
    "WebhookSpec",
    "WebhookTarget",
    "channel_summary",
    "channel_to_json",
    "deliver",
    "is_noop",
    "parse_channel_body",
    "parse_channel_spec",
]
