"""Channels (integrations): the reference's list, plus write endpoints of our own (no web UI yet).

GET    /api/v3/channels/        {"channels": [{"id", "name", "kind"}]}
POST   /api/v3/channels/        {"name", "kind", <kind's fields>} -> 201 the channel's JSON
GET    /api/v3/channels/<id>    the channel's JSON (with last_notify, last_error, disabled)
POST   /api/v3/channels/<id>    update the fields sent -> 200
DELETE /api/v3/channels/<id>    -> 200; checks no longer use it
"""

from __future__ import annotations

from hcserver.alerts.channels import (
    Channel,
    ChannelInvalid,
    ChannelSpec,
    channel_summary,
    channel_to_json,
    parse_channel_body,
)
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.targets import check_channel_targets
from hcserver.context import Context
from hcserver.domain.errors import Forbidden, Invalid, NotFound
from hcserver.domain.projects import Project
from hcserver.web.api import ApiHandler, settle

# How long saving a channel may wait for DNS to check its hosts; a name not resolved by then is
# accepted, and checked at delivery.
SAVE_CHECK_TIMEOUT = 5.0


def alert_settings(ctx: Context) -> AlertSettings:
    """The delivery settings, which the notifier holds; the defaults (private addresses refused) in a
    server that delivers no alerts."""
    for observer in ctx.observers:
        settings = getattr(observer, "settings", None)
        if isinstance(settings, AlertSettings):
            return settings
    return AlertSettings()


async def check_targets(ctx: Context, spec: ChannelSpec) -> None:
    """Refuse (400) a channel whose hosts delivery would refuse as private addresses."""
    settings = alert_settings(ctx)
    try:
        await check_channel_targets(
            spec, allow_private=settings.allow_private, timeout=min(settings.timeout, SAVE_CHECK_TIMEOUT)
        )
    except ChannelInvalid as e:
        raise Invalid(e.message) from None


class ChannelsHandler(ApiHandler):
    def get(self, version: str) -> None:
        project = self.authorize(write=True)
        channels = self.ctx.index.project_channels(project.id)
        self.send({"channels": [channel_summary(c) for c in channels if isinstance(c, Channel)]})

    async def post(self, version: str) -> None:
        project = self.authorize(write=True)
        body = {k: v for k, v in self.body_json().items() if k != "api_key"}
        try:
            channel = Channel.create(project.id, body, self.ctx.clock())
        except ChannelInvalid as e:
            raise Invalid(e.message) from None
        await check_targets(self.ctx, channel.spec)
        self.ctx.index.channels[channel.id] = channel
        await settle(self.ctx.recorder.channel_changed(channel.to_record()))
        self.send(channel_to_json(channel), 201)


class ChannelHandler(ApiHandler):
    def channel_of(self, project: Project, channel_id: str) -> Channel:
        channel = self.ctx.index.channels.get(channel_id)
        if not isinstance(channel, Channel):
            raise NotFound("not found")
        if channel.project_id != project.id:
            raise Forbidden("wrong project")
        return channel

    def get(self, version: str, channel_id: str) -> None:
        project = self.authorize(write=True)
        self.send(channel_to_json(self.channel_of(project, channel_id)))

    async def post(self, version: str, channel_id: str) -> None:
        project = self.authorize(write=True)
        channel = self.channel_of(project, channel_id)
        body = {k: v for k, v in self.body_json().items() if k != "api_key"}
        try:
            data = parse_channel_body(body, current=channel)
        except ChannelInvalid as e:
            raise Invalid(e.message) from None
        await check_targets(self.ctx, data.spec)
        if self.ctx.index.channels.get(channel_id) is not channel:
            raise NotFound("not found")  # deleted while its hosts were being checked
        channel.apply(data)
        await settle(self.ctx.recorder.channel_changed(channel.to_record()))
        self.send(channel_to_json(channel))

    async def delete(self, version: str, channel_id: str) -> None:
        project = self.authorize(write=True)
        channel = self.channel_of(project, channel_id)
        payload = channel_to_json(channel)
        ctx = self.ctx
        del ctx.index.channels[channel.id]
        for check in ctx.index.project_checks(project.id):
            if channel.id in check.channels:
                check.channels = tuple(c for c in check.channels if c != channel.id)
                await settle(ctx.check_changed(check))
        await settle(ctx.recorder.channel_deleted(channel.id))
        self.send(payload)


def routes(version_prefix: str) -> list[tuple[str, type[ApiHandler]]]:
    return [
        (version_prefix + r"/channels/", ChannelsHandler),
        (version_prefix + r"/channels/(?P<channel_id>[0-9a-f-]{36})", ChannelHandler),
    ]
