"""Delivery from the outbox: order, retries, permanent failures, throttles, digests, follow-ups."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.channel_settings import ConsoleChannelSettings
from monitor.config import DeliverySettings
from monitor.deliver import Deliverer
from monitor.durations import Rate
from monitor.errors import ChannelError, ChannelFailure
from monitor.plan import PlannedAlert
from monitor.records import Alert, Article, Digest
from monitor.severity import Severity
from monitor.store import NewArticle, SourceState, Store

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """A channel that records what it is given; ``fail`` decides per alert whether it fails."""

    def __init__(self, name: str, pace: float = 0.0,
                 fail: Callable[[Alert], ChannelError | None] | None = None) -> None:
        self.name = name
        self.pace = pace
        self.fail = fail
        self.sent: list[tuple[Alert, str | None]] = []
        self.digests: list[Digest] = []
        self.times: list[float] = []

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        error = self.fail(alert) if self.fail else None
        if error is not None:
            raise error
        self.sent.append((alert, thread))
        self.times.append(asyncio.get_running_loop().time())
        return f"ts-{len(self.sent)}"

    async def send_digest(self, digest: Digest) -> None:
        self.digests.append(digest)

    async def close(self) -> None:
        pass

    @property
    def titles(self) -> list[str]:
        return [a.article_title for a, _ in self.sent]


def make_alert(n: int, channel: str = "desk", rule: str = "r1", story: str | None = None) -> Alert:
    return Alert(rule_id=rule, rule_title="Rule", severity=Severity.HIGH, channel=channel,
                 story_id=story or f"s{n}", article_title=f"headline {n}",
                 article_url=f"http://x/{n}", source="wire", published=START, snippet="…",
                 matched_terms=("x",), article_identity=f"a{n}")


def file(store: Store, clock: Clock, *items: tuple[int, Alert, dict[str, Any]]) -> None:
    batch = []
    for n, alert, options in items:
        article = Article(source="wire", identity=f"a{n}", guid=f"a{n}", url=None,
                          title=alert.article_title, summary="", content="", author="",
                          published=START, fetched=START, language=None)
        planned = PlannedAlert(alert, options.get("key", alert.story_id),
                               options.get("follow_ups", "thread"),
                               options.get("in_digest", False), options.get("hold", False))
        batch.append(NewArticle(article, alert.story_id, (), (planned,)))
    store.save_batch(SourceState("wire", "u"), batch, clock.now)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url).open()
    yield opened
    opened.close()


async def direct(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


def deliverer(store: Store, clock: Clock, channels: dict[str, Recorder],
              throttles: dict[str, Rate] | None = None, **channel_options: Any) -> Deliverer:
    settings = {name: ConsoleChannelSettings(type="console", **channel_options.get(name, {}))
                for name in channels}
    return Deliverer(store.outbox, store.channel_health, direct, channels, settings,
                     throttles or {}, DeliverySettings(), clock)


def deliver(d: Deliverer) -> Any:
    return asyncio.run(d.deliver_due())


def test_a_failing_alert_holds_back_the_rest_of_its_channel_and_order_is_kept(
    store: Store,
) -> None:
    clock = Clock()
    failures = {"headline 1": 2}

    def flaky(alert: Alert) -> ChannelError | None:
        if failures.get(alert.article_title, 0) > 0:
            failures[alert.article_title] -= 1
            return ChannelError("desk", "HTTP 503", ChannelFailure.SERVER)
        return None

    desk = Recorder("desk", fail=flaky)
    file(store, clock, *[(n, make_alert(n), {}) for n in range(1, 5)])
    d = deliverer(store, clock, {"desk": desk})
    report = deliver(d)
    assert (report.sent, report.retrying) == (0, 1)
    deliver(d)  # the retry is not due yet: nothing may overtake it
    assert desk.sent == []
    for _ in range(3):
        clock.now += timedelta(minutes=5)
        deliver(d)
    assert desk.titles == ["headline 1", "headline 2", "headline 3", "headline 4"]


def test_a_failing_channel_does_not_delay_another(store: Store) -> None:
    clock = Clock()
    down = Recorder("down", fail=lambda a: ChannelError("down", "HTTP 500",
                                                        ChannelFailure.SERVER))
    up = Recorder("up")
    file(store, clock, (1, make_alert(1, "down"), {}), (2, make_alert(2, "up"), {}))
    deliver(deliverer(store, clock, {"down": down, "up": up}))
    assert up.titles == ["headline 2"]


def test_a_permanent_failure_parks_the_channel_until_its_settings_change(store: Store) -> None:
    clock = Clock()
    broken = True
    desk = Recorder("desk", fail=lambda a: ChannelError(
        "desk", "Slack said invalid_auth", ChannelFailure.AUTH, permanent=True) if broken else None)
    file(store, clock, (1, make_alert(1), {}), (2, make_alert(2), {}))
    deliver(deliverer(store, clock, {"desk": desk}))
    state = store.channel_health.channel_states()["desk"]
    assert state.failing_since == START
    assert state.error == "Slack said invalid_auth"
    broken = False
    clock.now += timedelta(days=3)  # longer than delivery.max_age: still nothing is lost
    deliver(deliverer(store, clock, {"desk": desk}))
    assert desk.sent == []
    assert {c.status: c.count for c in store.outbox_counts.counts()} == {"pending": 2}
    fixed = deliverer(store, clock, {"desk": desk}, desk={"min_severity": "low"})
    deliver(fixed)
    assert desk.titles == ["headline 1", "headline 2"]
    assert store.channel_health.channel_states()["desk"].failing_since is None


def test_clearing_a_failing_channel_releases_its_alerts(store: Store) -> None:
    clock = Clock()
    desk = Recorder("desk", fail=lambda a: ChannelError("desk", "HTTP 404 from the webhook",
                                                        ChannelFailure.CLIENT, permanent=True))
    file(store, clock, (1, make_alert(1), {}))
    d = deliverer(store, clock, {"desk": desk})
    deliver(d)
    desk.fail = None
    store.channel_health.clear_failing("desk")  # what a successful `channels test` does
    deliver(d)
    assert desk.titles == ["headline 1"]


def test_a_rule_over_its_throttle_waits_for_the_window(store: Store) -> None:
    clock = Clock()
    desk = Recorder("desk")
    file(store, clock, *[(n, make_alert(n), {}) for n in range(1, 6)])
    d = deliverer(store, clock, {"desk": desk}, throttles={"r1": Rate(2, timedelta(hours=1))})
    report = deliver(d)
    assert desk.titles == ["headline 1", "headline 2"]
    assert report.held == 3
    clock.now += timedelta(minutes=30)
    deliver(d)
    assert len(desk.sent) == 2
    clock.now += timedelta(minutes=31)
    deliver(d)
    assert desk.titles == ["headline 1", "headline 2", "headline 3", "headline 4"]


def test_throttled_alerts_go_to_the_digest_when_the_channel_has_one(store: Store) -> None:
    clock = Clock()
    desk = Recorder("desk")
    file(store, clock, *[(n, make_alert(n), {"in_digest": True}) for n in range(1, 5)])
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *",
                                                      "throttle": Rate(1, timedelta(hours=1))})
    deliver(d)
    assert desk.titles == ["headline 1"]
    assert asyncio.run(d.send_digest("desk")) == 4
    (digest,) = desk.digests
    assert [a.article_title for a in digest.alerts] == [f"headline {n}" for n in range(1, 5)]
    assert {c.status: c.count for c in store.outbox_counts.counts()} == {"sent": 4}
    assert asyncio.run(d.send_digest("desk")) == 0  # an empty digest is not sent
    assert len(desk.digests) == 1


def test_a_digest_only_channel_sends_nothing_until_its_digest(store: Store) -> None:
    clock = Clock()
    desk = Recorder("desk")
    file(store, clock, *[(n, make_alert(n), {"in_digest": True, "hold": True})
                         for n in range(1, 4)])
    d = deliverer(store, clock, {"desk": desk},
                  desk={"digest": "0 8 * * *", "immediate": False})
    deliver(d)
    assert desk.sent == []
    assert asyncio.run(d.send_digest("desk")) == 3
    assert len(desk.digests[0].by_rule()) == 1


def test_alerts_held_for_a_removed_channel_are_retried_then_recorded_failed(store: Store) -> None:
    """A reload removed the channel its alerts were held for (its digest): they are not
    left waiting for ever. Like its other alerts, they are retried (sent should the
    channel come back) and recorded failed after ``delivery.max_age``."""
    clock = Clock()
    file(store, clock, *[(n, make_alert(n, "gone"), {"in_digest": True, "hold": True})
                         for n in (1, 2)])
    d = deliverer(store, clock, {"desk": Recorder("desk")})
    assert deliver(d).retrying == 1  # the first holds the rest of its channel back
    clock.now += DeliverySettings().max_age
    assert deliver(d).failed == 1
    clock.now += timedelta(minutes=1)
    assert deliver(d).failed == 1
    assert store.outbox_counts.failed_rows() == [
        ("gone", "r1", "channel 'gone' is not configured any more")] * 2


def test_a_later_article_of_the_same_story_is_a_follow_up_in_the_thread(store: Store) -> None:
    clock = Clock()
    desk = Recorder("desk")
    file(store, clock, (1, make_alert(1, story="atacms"), {}))
    d = deliverer(store, clock, {"desk": desk})
    deliver(d)
    file(store, clock, (2, make_alert(2, story="atacms"), {}),
         (3, make_alert(3, story="atacms"), {"follow_ups": "none"}))
    deliver(d)
    (first, _), (second, thread) = desk.sent
    assert (first.kind, second.kind) == ("alert", "follow_up")
    assert thread == "ts-1"
    assert second.article_title == "headline 2"


def test_follow_ups_for_the_digest_are_held_for_it(store: Store) -> None:
    clock = Clock()
    desk = Recorder("desk")
    file(store, clock, (1, make_alert(1, story="atacms"), {"in_digest": True}),
         (2, make_alert(2, story="atacms"), {"in_digest": True, "follow_ups": "digest"}))
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *",
                                                      "follow_ups": "digest"})
    deliver(d)
    assert desk.titles == ["headline 1"]
    asyncio.run(d.send_digest("desk"))
    assert [(a.kind, a.article_title) for a in desk.digests[0].alerts] == [
        ("alert", "headline 1"), ("follow_up", "headline 2")]


def test_a_channel_is_paced(store: Store) -> None:
    clock = Clock()
    desk = Recorder("desk", pace=0.2)
    file(store, clock, *[(n, make_alert(n), {}) for n in range(1, 4)])
    deliver(deliverer(store, clock, {"desk": desk}))
    gaps = [b - a for a, b in zip(desk.times, desk.times[1:], strict=False)]
    assert len(gaps) == 2
    assert all(gap >= 0.18 for gap in gaps)


def test_a_rule_over_its_throttle_holds_back_no_other_rule_however_many_wait(
    store: Store,
) -> None:
    """More throttled alerts than a claim reads (``delivery.batch``) wait for their window:
    another rule's alert on the channel is sent all the same."""
    clock = Clock()
    desk = Recorder("desk")
    batch = DeliverySettings().batch
    file(store, clock, *[(n, make_alert(n), {}) for n in range(1, batch + 3)])
    d = deliverer(store, clock, {"desk": desk}, throttles={"r1": Rate(2, timedelta(hours=1))})
    deliver(d)
    file(store, clock, (900, make_alert(900, rule="r2"), {}))
    clock.now += timedelta(minutes=1)
    deliver(d)
    assert desk.titles == ["headline 1", "headline 2", "headline 900"]
