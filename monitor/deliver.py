"""Stage *deliver*: drain the outbox into the channels.

Claim due rows (a conditional update: one claimant wins), send each through its
channel, and only then mark it sent; a send cut short by a crash leaves the row
claimed until its lease expires, and it is sent again. Failures are retried with
exponential backoff and jitter; a row older than ``delivery.max_age`` is marked
failed and reported, never silently dropped. Rows of one channel are sent in the
order they were planned.

Does not plan, match or render: channels render.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from monitor.channels.base import Channel
from monitor.config import DeliverySettings
from monitor.errors import ChannelError
from monitor.records import Delivery
from monitor.store import Store

log = logging.getLogger("newsmon.deliver")

LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(hours=1)

T = TypeVar("T")
DbRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def retry_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """Exponential backoff with jitter, at least what the channel asked for."""
    base = min(FIRST_RETRY * (2 ** max(0, attempts - 1)), MAX_RETRY)
    jittered: timedelta = base * random.uniform(0.8, 1.2)
    if retry_after is not None:
        jittered = max(jittered, timedelta(seconds=retry_after))
    return jittered


class Deliverer:
    def __init__(
        self,
        store: Store,
        db: DbRunner,
        channels: Mapping[str, Channel],
        settings: DeliverySettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._db = db
        self._channels = channels
        self._settings = settings
        self._clock = clock

    async def deliver_due(self) -> DeliveryReport:
        """Send everything that is due now; return what happened."""
        sent = retrying = failed = 0
        while True:
            batch: list[Delivery] = await self._db(
                self._store.claim_due, self._clock(), self._settings.batch, LEASE
            )
            if not batch:
                break
            blocked: set[str] = set()
            for delivery in batch:
                outcome = await self._deliver(delivery, blocked)
                sent += outcome == "sent"
                retrying += outcome == "retry"
                failed += outcome == "failed"
            if len(batch) < self._settings.batch:
                break
        return DeliveryReport(sent, retrying, failed)

    async def _deliver(self, delivery: Delivery, blocked: set[str]) -> str:
        alert = delivery.alert
        now = self._clock()
        if alert.channel in blocked:
            # An earlier alert of this channel failed in this round: keep the order.
            await self._db(self._store.mark_retry, delivery.outbox_id,
                           "waiting for an earlier alert of this channel", now + FIRST_RETRY)
            return "retry"
        channel = self._channels.get(alert.channel)
        if channel is None:
            reason = f"channel {alert.channel!r} is not configured any more"
            return await self._fail_or_retry(delivery, reason, None, now, blocked)
        try:
            await channel.send(alert)
        except ChannelError as exc:
            return await self._fail_or_retry(delivery, str(exc), exc.retry_after, now, blocked)
        await self._db(self._store.mark_sent, delivery.outbox_id, self._clock())
        log.info("sent alert %s for rule %s to channel %s", delivery.outbox_id, alert.rule_id,
                 alert.channel)
        return "sent"

    async def _fail_or_retry(
        self,
        delivery: Delivery,
        reason: str,
        retry_after: float | None,
        now: datetime,
        blocked: set[str],
    ) -> str:
        blocked.add(delivery.alert.channel)
        if now - delivery.created >= self._settings.max_age:
            await self._db(self._store.mark_failed, delivery.outbox_id, reason)
            log.error("gave up on alert %s to channel %s after %d attempts: %s",
                      delivery.outbox_id, delivery.alert.channel, delivery.attempts, reason)
            return "failed"
        delay = retry_delay(delivery.attempts, retry_after)
        await self._db(self._store.mark_retry, delivery.outbox_id, reason, now + delay)
        log.warning("alert %s to channel %s failed (attempt %d), retrying in %ds: %s",
                    delivery.outbox_id, delivery.alert.channel, delivery.attempts,
                    delay.total_seconds(), reason)
        return "retry"
