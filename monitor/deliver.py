"""Stage *deliver*: drain the outbox into the channels.

Claim due rows (a conditional update: one claimant wins), send each through its
channel, and only then mark it sent; a send cut short by a crash leaves the row
claimed until its lease expires, and it is sent again. The leases of a batch are
renewed while it is being sent, so a slow channel's rows are not taken over and
sent twice. Channels are served side by side, each in order and at its own pace
(Slack: about one message a second); a follow-up goes after the alert it follows,
in its thread (``monitor.store.follow_ups``).

- A transient failure (timeout, 5xx, 429) retries with exponential backoff and
  jitter, honouring Retry-After; the channel's later rows wait behind it. A row
  still failing ``delivery.max_age`` after it was planned is marked failed and
  reported, never silently dropped.
- A permanent failure (bad credentials, unknown channel, a deleted webhook) marks
  the channel failing: nothing is sent to it, and its alerts wait, until its
  settings change or ``newsmon channels test`` succeeds.
- Throttles (a rule's ``throttle``, a channel's ``throttle``): an alert over the
  limit goes to the channel's next digest, or waits for the window to pass.
- Digests: ``send_digest`` sends a channel's listed alerts as one message.
- Silences added after an alert was filed still cover it: when a round reaches
  it, it is held, deferred or dropped as if it had been filed under the silence.

Does not plan, match or render: channels render.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from apscheduler.triggers.base import BaseTrigger

from monitor.channel_settings import ChannelSettings, channel_fingerprint
from monitor.channels.base import Channel
from monitor.config import DeliverySettings
from monitor.durations import Rate
from monitor.errors import ChannelError
from monitor.leases import renewing
from monitor.logs import about
from monitor.records import Alert, Delivery, Digest
from monitor.silence import Silence, silencing
from monitor.store import ChannelHealth, Outbox

log = logging.getLogger("newsmon.deliver")

FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(hours=1)

DbRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    held: int = 0


class DeliveryObserver(Protocol):
    """Told of every send (``monitor.observe.metrics.Metrics`` is one)."""

    def sent(self, channel: str, seconds: float, delay: float) -> None: ...
    def send_failed(self, channel: str, kind: str) -> None: ...
    def gave_up(self, channel: str) -> None: ...
    def digested(self, channel: str, alerts: int) -> None: ...


class _Unobserved:
    def sent(self, channel: str, seconds: float, delay: float) -> None:
        pass

    def send_failed(self, channel: str, kind: str) -> None:
        pass

    def gave_up(self, channel: str) -> None:
        pass

    def digested(self, channel: str, alerts: int) -> None:
        pass


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
        outbox: Outbox,
        health: ChannelHealth,
        db: DbRunner,
        channels: Mapping[str, Channel],
        channel_settings: Mapping[str, ChannelSettings],
        rule_throttles: Mapping[str, Rate],
        settings: DeliverySettings,
        clock: Callable[[], datetime],
        observer: DeliveryObserver | None = None,
    ) -> None:
        self._observer: DeliveryObserver = observer or _Unobserved()
        self._outbox = outbox
        self._health = health
        self._db = db
        self._channels = channels
        self._channel_settings = channel_settings
        self._rule_throttles = rule_throttles
        self._settings = settings
        self._clock = clock
        self._fingerprints = {n: channel_fingerprint(s) for n, s in channel_settings.items()}
        self._last_send: dict[str, float] = {}

    async def failing_channels(self) -> set[str]:
        """Channels that failed permanently with their current settings."""
        states = await self._db(self._health.channel_states)
        failing: set[str] = set()
        for name, state in states.items():
            if state.failing_since is None:
                continue
            if state.fingerprint == self._fingerprints.get(name):
                failing.add(name)
            else:  # its settings changed since: try it again
                await self._db(self._health.clear_failing, name)
                log.info("channel %s: settings changed, sending to it again", name,
                         extra=about(channel=name))
        return failing

    async def deliver_due(self) -> DeliveryReport:
        """Send everything that is due now; return what happened."""
        totals: dict[str, int] = {"sent": 0, "retry": 0, "failed": 0, "held": 0}
        skip = await self.failing_channels()
        await self._release_held()
        silences = await self._db(self._outbox.active_silences, self._clock())
        while True:
            batch: list[Delivery] = await self._db(
                self._outbox.claim_due, self._clock(), self._settings.batch,
                self._settings.lease, skip,
            )
            if not batch:
                break
            by_channel: dict[str, list[Delivery]] = {}
            for delivery in batch:
                by_channel.setdefault(delivery.alert.channel, []).append(delivery)
            async with renewing(functools.partial(self._renew, batch), self._settings.lease,
                                "alerts being sent"):
                # Every channel's sends end before the leases stop being renewed: one
                # channel's error (the database failing under it) must not leave the
                # others sending on, unrenewed, for another node to send again.
                results = await asyncio.gather(
                    *(self._deliver_channel(name, items, silences)
                      for name, items in by_channel.items()),
                    return_exceptions=True,
                )
            outcomes: list[dict[str, int]] = []
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                outcomes.append(result)
            for name, outcome in zip(by_channel, outcomes, strict=True):
                for key in totals:
                    totals[key] += outcome[key]
                if outcome["stopped"]:  # its head failed: leave the rest for a later round
                    skip.add(name)
        return DeliveryReport(totals["sent"], totals["retry"], totals["failed"], totals["held"])

    async def _release_held(self) -> None:
        """Alerts held for a digest that a reload removed (or whose channel it removed)
        are sent on their own: no digest job would ever send them."""
        digests = [n for n, s in self._channel_settings.items() if s.digest is not None]
        released = await self._db(self._outbox.release_held, digests, self._clock())
        if released:
            log.info("%d alerts held for a digest their channel no longer has are sent on"
                     " their own", released)

    async def _renew(self, batch: list[Delivery]) -> None:
        """Keep the leases of a batch being sent (a slow channel must not let another node
        take its rows over and send them again)."""
        await self._db(self._outbox.renew, batch, self._clock(), self._settings.lease)

    async def _deliver_channel(self, name: str, items: list[Delivery],
                               silences: Sequence[Silence]) -> dict[str, int]:
        """Send one channel's claimed rows in order; stop at the first failure."""
        outcome = {"sent": 0, "retry": 0, "failed": 0, "held": 0, "stopped": 0}
        channel = self._channels.get(name)
        for index, delivery in enumerate(items):
            if channel is None:
                result = await self._fail_or_retry(
                    delivery, f"channel {name!r} is not configured any more", None)
            elif await self._silenced(delivery, silences) or await self._throttled(delivery):
                outcome["held"] += 1
                continue
            else:
                result = await self._send(channel, delivery)
            outcome[result] += 1
            if result != "sent":
                await self._db(self._outbox.release, items[index + 1 :])
                outcome["stopped"] = 1
                break
        return outcome

    async def _send(self, channel: Channel, delivery: Delivery) -> str:
        await self._pace(channel)
        alert = delivery.alert
        started = asyncio.get_running_loop().time()
        try:
            remote_id = await channel.send(alert, delivery.thread)
        except ChannelError as exc:
            self._observer.send_failed(channel.name, exc.kind.value)
            if exc.permanent:
                return await self._stop_channel(delivery, exc)
            return await self._fail_or_retry(delivery, str(exc), exc.retry_after)
        except Exception as exc:  # a channel bug must cost a retry, never the round
            log.exception("channel %s raised unexpectedly", channel.name,
                          extra=about(channel=channel.name))
            self._observer.send_failed(channel.name, "internal")
            return await self._fail_or_retry(delivery, f"internal error: {exc!r}", None)
        finally:
            self._last_send[channel.name] = asyncio.get_running_loop().time()
        now = self._clock()
        if not await self._db(self._outbox.mark_sent, delivery.outbox_id, now, remote_id):
            log.warning("alert %s to channel %s was sent twice: its lease ran out during a"
                        " send (its renewals failed) and another sender sent it too",
                        delivery.outbox_id, alert.channel,
                        extra=about(rule=alert.rule_id, channel=alert.channel))
        self._observer.sent(channel.name, asyncio.get_running_loop().time() - started,
                            (now - delivery.created).total_seconds())
        log.info("sent %s %s for rule %s to channel %s", alert.kind.replace("_", "-"),
                 delivery.outbox_id, alert.rule_id, alert.channel,
                 extra=about(rule=alert.rule_id, channel=alert.channel))
        return "sent"

    async def _pace(self, channel: Channel) -> None:
        last = self._last_send.get(channel.name)
        if last is not None and channel.pace:
            wait = last + channel.pace - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _silenced(self, delivery: Delivery, silences: Sequence[Silence]) -> bool:
        """Covered by a silence added after it was filed: treated as if filed under it."""
        alert = delivery.alert
        silence = silencing(silences, alert, self._clock())
        if silence is None:
            return False
        settings = self._channel_settings.get(alert.channel)
        to_digest = settings is not None and settings.digest is not None
        await self._db(self._outbox.silence_claimed, delivery, silence, to_digest)
        log.info("alert %s not sent: %s", delivery.outbox_id, silence.describe(),
                 extra=about(rule=alert.rule_id, channel=alert.channel))
        return True

    async def _throttled(self, delivery: Delivery) -> bool:
        """Over a rule's or the channel's limit: hold for the digest, or defer."""
        alert = delivery.alert
        settings = self._channel_settings.get(alert.channel)
        limits: list[tuple[Rate, str | None]] = []
        if alert.rule_id in self._rule_throttles:
            limits.append((self._rule_throttles[alert.rule_id], alert.rule_id))
        if settings is not None and settings.throttle is not None:
            limits.append((settings.throttle, None))
        now = self._clock()
        for rate, rule_id in limits:
            count, first = await self._db(self._outbox.sent_since, alert.channel,
                                          now - rate.period, rule_id)
            if count < rate.count:
                continue
            what = f"rule {rule_id}" if rule_id else f"channel {alert.channel}"
            reason = f"throttled: {what} sent {count} in {rate.period} (limit {rate})"
            if settings is not None and settings.digest is not None:
                await self._db(self._outbox.hold, delivery, reason)
                log.info("alert %s %s; it goes to the next digest", delivery.outbox_id, reason,
                         extra=about(rule=alert.rule_id, channel=alert.channel))
            else:
                until = (first or now) + rate.period
                await self._db(self._outbox.defer, delivery, reason, until)
                log.info("alert %s %s; it waits until %s", delivery.outbox_id, reason,
                         until.strftime("%H:%M:%S"),
                         extra=about(rule=alert.rule_id, channel=alert.channel))
            return True
        return False

    async def _stop_channel(self, delivery: Delivery, error: ChannelError) -> str:
        name = delivery.alert.channel
        await self._db(self._outbox.release, [delivery])
        await self._db(self._health.set_failing, name, error.reason,
                       self._fingerprints.get(name, ""), self._clock())
        log.error("channel %s failed permanently: %s; its alerts wait until its settings"
                  " change or `newsmon channels test %s` succeeds", name, error.reason, name,
                  extra=about(channel=name))
        return "retry"

    async def _fail_or_retry(self, delivery: Delivery, reason: str,
                             retry_after: float | None) -> str:
        now = self._clock()
        if now - delivery.created >= self._settings.max_age:
            await self._db(self._outbox.mark_failed, delivery, reason)
            self._observer.gave_up(delivery.alert.channel)
            log.error("gave up on alert %s to channel %s after %d attempts: %s",
                      delivery.outbox_id, delivery.alert.channel, delivery.attempts, reason,
                      extra=about(rule=delivery.alert.rule_id, channel=delivery.alert.channel))
            return "failed"
        delay = retry_delay(delivery.attempts, retry_after)
        await self._db(self._outbox.mark_retry, delivery, reason, now + delay)
        log.warning("alert %s to channel %s failed (attempt %d), retrying in %ds: %s",
                    delivery.outbox_id, delivery.alert.channel, delivery.attempts,
                    delay.total_seconds(), reason,
                    extra=about(rule=delivery.alert.rule_id, channel=delivery.alert.channel))
        return "retry"

    async def _drop_silenced(self, rows: list[tuple[int, Alert]]) -> int:
        """Drop the digest rows a ``drop`` silence added since they were held covers; how
        many (an alert already sent on its own stays listed: the silence came too late)."""
        silences = [s for s in await self._db(self._outbox.active_silences, self._clock())
                    if s.action == "drop"]
        dropped = 0
        for outbox_id, alert in rows:
            silence = silencing(silences, alert, self._clock())
            # Only a waiting row: one a delivery round is sending now keeps that send,
            # and its story key with it.
            if silence is not None and await self._db(self._outbox.silence_waiting,
                                                      outbox_id, silence, True):
                dropped += 1
        return dropped

    async def digest_due(self, name: str, schedule: BaseTrigger) -> bool:
        """Whether ``schedule`` fired since the channel's last digest (or its oldest item)."""
        states = await self._db(self._health.channel_states)
        last = states[name].last_digest_at if name in states else None
        if last is None:
            last = await self._db(self._outbox.oldest_digest_item, name)
            if last is None:
                return False
        next_time = schedule.get_next_fire_time(None, last)
        return next_time is not None and next_time <= self._clock()

    async def send_digest(self, name: str) -> int:
        """Send ``name``'s digest now; return how many alerts it held (0: nothing sent)."""
        channel = self._channels.get(name)
        if channel is None:
            return 0
        now = self._clock()
        rows = await self._db(self._outbox.digest_rows, name, now)
        if await self._drop_silenced(rows):  # their follow-ups stand in for them now
            rows = await self._db(self._outbox.digest_rows, name, now)
        if not rows:
            return 0
        states = await self._db(self._health.channel_states)
        since = states[name].last_digest_at if name in states else None
        digest = Digest(name, tuple(alert for _, alert in rows), since, now)
        try:
            await channel.send_digest(digest)
        except ChannelError as exc:
            log.error("digest for channel %s (%d alerts) failed, kept for the next one: %s",
                      name, len(rows), exc, extra=about(channel=name))
            return 0
        await self._db(self._outbox.mark_digested, name, [i for i, _ in rows], now)
        self._observer.digested(name, len(rows))
        log.info("sent digest of %d alerts to channel %s", len(rows), name,
                 extra=about(channel=name))
        return len(rows)
