"""Channels (integrations): the reference's list, plus write endpoints of our own (no web UI yet).

GET    /api/v3/channels/        {"channels": [{"id", "name", "kind"}]}
POST   /api/v3/channels/        {"name", "kind", <kind's fields>} -> 201 the channel's JSON
GET    /api/v3/channels/<id>    the channel's JSON (with last_notify, last_error, disabled)
POST   /api/v3/channels/<id>    update the fields sent -> 200
DELETE /api/v3/channels/<id>    -> 200; checks no longer use it
"""

from __future__ import annotations

from hcserver import services
from hcserver.alerts.channels import Channel
from hcserver.domain.errors import Forbidden, NotFound
from hcserver.domain.projects import Project
from hcserver.views import channel_summary, channel_to_json
from hcserver.web.api import ApiHandler


class ChannelsHandler(ApiHandler):
    def get(self, version: str) -> None:
        project = self.authorize(write=True)
        channels = self.ctx.index.project_channels(project.id)
        self.send({"channels": [channel_summary(c) for c in channels if isinstance(c, Channel)]})

    async def post(self, version: str) -> None:
        project = self.authorize(write=True)
        body = {k: v for k, v in self.body_json().items() if k != "api_key"}
        channel = await services.create_channel(self.ctx, project.id, body)
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
        await services.update_channel(self.ctx, channel, body)
        self.send(channel_to_json(channel))

    async def delete(self, version: str, channel_id: str) -> None:
        project = self.authorize(write=True)
        channel = self.channel_of(project, channel_id)
        payload = channel_to_json(channel)
        await services.delete_channel(self.ctx, channel)
        self.send(payload)


def routes(version_prefix: str) -> list[tuple[str, type[ApiHandler]]]:
    return [
        (version_prefix + r"/channels/", ChannelsHandler),
        (version_prefix + r"/channels/(?P<channel_id>[0-9a-f-]{36})", ChannelHandler),
    ]
