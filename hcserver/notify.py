"""Alert delivery that is never lost: flip -> one persisted notification per channel -> delivery.

A notification is made in the same event-loop step as its flip, so both go to the write-behind
queue together and land in the same transaction: a crash keeps both or neither. Delivery runs in
the background, one worker per (check, channel) pair, so notifications of one check reach a channel
in order while a slow channel delays nobody else. Each attempt has a timeout; up to `attempts`
tries with backoff; a permanent error stops at once and disables the channel. The outcome is kept
on the notification (state, attempts, error) and on the channel (last_notify, last_error). After a
restart, `resume()` takes the unfinished ones again.

    notifier = Notifier(ctx, AlertSettings.from_env(os.environ))
    ctx.observers.append(notifier)
    notifier.resume(await load_notifications(store, PENDING))
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any

from hcserver.alerts.channels import Channel
from hcserver.alerts.settings import AlertSettings
from hcserver.alerts.templates import AlertContext
from hcserver.alerts.transports import deliver
from hcserver.context import Context
from hcserver.domain.checks import DOWN, NEW, PAUSED, UP, Check
from hcserver.domain.pings import Flip
from hcserver.ports import NotificationKey
from hcserver.views import check_to_json

log = logging.getLogger("hcserver.notify")

PENDING, DELIVERED, FAILED, DROPPED = "pending", "delivered", "failed", "dropped"
# A flip's reason as its log line says it.
_REASONS = {
    "timeout": "missed deadline",
    "success": "success ping",
    "fail": "failure ping",
    "pause": "paused",
    "resume": "resumed",
}


def is_alertable(flip: Flip) -> bool:
    """Down always alerts; up alerts only when it ends an outage (not new -> up, not paused -> up)."""
    if flip.new_status == DOWN:
        return True
    return flip.new_status == UP and flip.old_status not in (NEW, PAUSED)


@dataclass(slots=True)
class Notification:
    check: str
    flip_created: float
    channel_id: str
    direction: str  # "up" or "down"
    ping_n: int  # the check's last ping when it flipped: its body and exit status fill the alert
    status: str = PENDING
    attempts: int = 0
    error: str = ""

    @property
    def key(self) -> NotificationKey:
        return (self.check, self.flip_created, self.channel_id)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Notification:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in names})


class Notifier:
    def __init__(
        self,
        ctx: Context,
        settings: AlertSettings,
        *,
        attempts: int = 3,
        backoff: tuple[float, ...] = (1.0, 5.0),
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.attempts = attempts
        self.backoff = backoff
        self._queues: dict[tuple[str, str], deque[Notification]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        # For /metrics: flips by the status changed to; notifications delivered and failed, and
        # failed attempts, by channel kind.
        self.flips: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.failed_attempts: Counter[str] = Counter()

    # -- Observer ---------------------------------------------------------------------------------

    def check_changed(self, check: Check) -> None:
        pass

    def check_deleted(self, check: Check) -> None:
        pass  # its queued notifications are dropped when their turn comes

    def flipped(self, check: Check, flip: Flip) -> None:
        self.flips[flip.new_status] += 1
        log.info('check %s "%s" %s -> %s (%s)', check.uuid, check.name, flip.old_status, flip.new_status,
                 _REASONS.get(flip.reason, flip.reason))  # fmt: skip
        if not is_alertable(flip):
            return
        for channel_id in check.channels:
            channel = self.ctx.index.channels.get(channel_id)
            if not isinstance(channel, Channel) or channel.disabled:
                continue
            notification = Notification(check.uuid, flip.created, channel_id, flip.new_status, check.n_pings)
            self._save(notification)
            self._enqueue(notification)

    # -- delivery ---------------------------------------------------------------------------------

    def resume(self, records: list[tuple[NotificationKey, dict[str, Any]]]) -> int:
        """Queue notifications left unfinished by an earlier run, oldest flip first."""
        pending = [Notification.from_record(r) for _, r in records]
        pending = [n for n in pending if n.status == PENDING]
        pending.sort(key=lambda n: n.flip_created)
        for notification in pending:
            self._enqueue(notification)
        if pending:
            log.info("resuming %d undelivered notifications", len(pending))
        return len(pending)

    def _enqueue(self, notification: Notification) -> None:
        key = (notification.check, notification.channel_id)
        self._queues.setdefault(key, deque()).append(notification)
        if key not in self._workers:
            self._workers[key] = asyncio.ensure_future(self._work(key))

    async def _work(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
        finally:
            self._workers.pop(key, None)
            if not queue:
                self._queues.pop(key, None)

    async def _deliver(self, notification: Notification) -> None:
        index = self.ctx.index
        channel = index.channels.get(notification.channel_id)
        check = index.checks.get(notification.check)
        if not isinstance(channel, Channel) or check is None:
            notification.status, notification.error = DROPPED, "the check or channel was deleted"
            self._save(notification)
            return
        alert = await self._alert_context(check, notification)
        while notification.attempts < self.attempts:
            result = await deliver(channel, alert, self.settings)
            notification.attempts += 1
            channel.record_delivery(result, self.ctx.clock())
            self._save_channel(channel)
            if result.ok:
                notification.status, notification.error = DELIVERED, ""
                self.sent[channel.kind] += 1
                self._save(notification)
                return
            notification.error = result.error
            self.failed_attempts[channel.kind] += 1
            log.warning("alert for %s via %s channel %s failed (attempt %d of %d): %s", check.uuid, channel.kind,
                        channel.name or channel.id, notification.attempts, self.attempts, result.error)  # fmt: skip
            if result.permanent:
                log.warning("%s channel %s (%s) is disabled until it is updated: %s", channel.kind,
                            channel.name or channel.id, channel.id, result.error)  # fmt: skip
                break
            self._save(notification)
            if notification.attempts < self.attempts:
                delay = self.backoff[min(notification.attempts - 1, len(self.backoff) - 1)]
                await asyncio.sleep(delay)
        notification.status = FAILED
        self.failed[channel.kind] += 1
        self._save(notification)

    async def _alert_context(self, check: Check, notification: Notification) -> AlertContext:
        ctx = self.ctx
        ping = await ctx.recorder.get_ping(check, notification.ping_n) if notification.ping_n else None
        project = ctx.index.projects.get(check.project_id)
        return AlertContext(
            code=check.uuid,
            name=check.name,
            slug=check.slug,
            tags=check.tags,
            status=notification.direction,
            now=notification.flip_created,
            check_json=check_to_json(
                check,
                now=ctx.clock(),
                settings=ctx.settings,
                version=3,
                readonly=False,
                badge_key=ctx.index.badge_key(check.project_id),
            ),
            body=ping.body if ping is not None else None,
            exitstatus=ping.exitstatus if ping is not None else None,
            project_name=project.name if project is not None else "",
            last_ping=check.last_ping,
        )

    def _save(self, notification: Notification) -> Awaitable[None] | None:
        return self.ctx.notification_changed(notification.key, notification.to_record())

    def _save_channel(self, channel: Channel) -> None:
        self.ctx.channel_changed(channel.to_record())

    async def close(self) -> None:
        """Stop delivering; what is unfinished stays pending in the store for the next start."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
