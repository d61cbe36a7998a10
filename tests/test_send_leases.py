"""Leases on what is being sent: a slow send keeps its lease, a stale claimant undoes nothing.

An outbox row and a digest are each sent under a lease, so that a node that dies
mid-send leaves them to another. A send may outlast its lease (a slow channel, a
backlog, a digest in many parts): the sender renews the lease while it sends, so no
other node takes the work over and sends it again; and should the lease run out all
the same, what the late claimant records can neither send a sent row again nor undo
the next claimant's claim. Two nodes share one database (SQLite and PostgreSQL);
Slack is a real HTTP server that answers slowly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.channel_settings import ConsoleChannelSettings
from monitor.config import DeliverySettings
from monitor.deliver import Deliverer
from monitor.errors import ChannelError, ChannelFailure
from monitor.leases import renewing
from monitor.records import Alert, Delivery, Digest
from monitor.sending import Sending
from monitor.silence import Silence
from monitor.store import Store
from monitor.store.schema import outbox
from tests.slack_server import SlackServer
from tests.slack_server import slack_server_fixture as slack_server_fixture
from tests.test_channel_slack import api_channel
from tests.test_deliver import Clock, Recorder, deliverer, direct, file, make_alert
from tests.test_deliver import store as store

LEASE = timedelta(minutes=5)  # delivery.lease's default
SHORT = timedelta(seconds=1.2)  # a lease the slow Slack below outlasts twice
SLOW = 2.4  # seconds Slack takes to answer


@pytest.fixture
def other(store_url: str, store: Store) -> Iterator[Store]:
    """A second node on the same database."""
    opened = Store(store_url).open()
    yield opened
    opened.close()


def statuses(store: Store) -> dict[str, int]:
    return {c.status: c.count for c in store.outbox_counts.counts()}


# --- a claimant whose lease ran out ----------------------------------------------------


def taken_over(store: Store, other: Store, clock: Clock) -> tuple[Delivery, Delivery]:
    """An alert claimed by ``store``'s node, then by ``other``'s once the first lease ran
    out (the first send still under way): the stale claim and the current one."""
    file(store, clock, (1, make_alert(1, story="st"), {}))
    (stale,) = store.outbox.claim_due(clock.now, 10, LEASE)
    clock.now += LEASE + timedelta(seconds=1)
    (current,) = other.outbox.claim_due(clock.now, 10, LEASE)
    return stale, current


def test_a_row_sent_by_a_claimant_whose_lease_ran_out_stays_sent_when_the_next_fails(
    store: Store, other: Store,
) -> None:
    clock = Clock()
    first, second = taken_over(store, other, clock)
    assert store.outbox.mark_sent(first.outbox_id, clock.now, "ts-1") is True
    assert other.outbox.mark_retry(second, "HTTP 503", clock.now) is False
    assert statuses(store) == {"sent": 1}
    assert store.outbox.claim_due(clock.now + timedelta(hours=1), 10, LEASE) == []


def test_the_first_send_recorded_keeps_its_message_id_for_the_storys_thread(
    store: Store, other: Store,
) -> None:
    clock = Clock()
    first, second = taken_over(store, other, clock)
    store.outbox.mark_sent(first.outbox_id, clock.now, "ts-1")
    assert other.outbox.mark_sent(second.outbox_id, clock.now, "ts-2") is False
    file(store, clock, (2, make_alert(2, story="st"), {}))
    (follow_up,) = store.outbox.claim_due(clock.now, 10, LEASE)
    assert follow_up.thread == "ts-1"


def test_a_late_record_of_a_send_after_the_next_claimants_changes_nothing(
    store: Store, other: Store,
) -> None:
    """Both sent it (the "sent twice" case); the claimant whose lease ran out records its
    send last: the row keeps the first send recorded, its time and its message id."""
    clock = Clock()
    stale, current = taken_over(store, other, clock)
    assert other.outbox.mark_sent(current.outbox_id, clock.now, "ts-2") is True
    assert store.outbox.mark_sent(stale.outbox_id, clock.now + timedelta(seconds=5),
                                  "ts-1") is False
    with store.transaction() as conn:
        row = conn.execute(sa.select(outbox.c.status, outbox.c.sent_at, outbox.c.remote_id,
                                     outbox.c.claimed_until)).one()
    assert tuple(row) == ("sent", clock.now, "ts-2", None)
    assert store.outbox.claim_due(clock.now + timedelta(days=2), 10, LEASE) == []


def test_a_late_record_of_a_send_the_next_claimant_failed_leaves_it_sent_not_queued(
    store: Store, other: Store,
) -> None:
    clock = Clock()
    stale, current = taken_over(store, other, clock)
    assert other.outbox.mark_retry(current, "HTTP 503", clock.now + timedelta(seconds=10))
    assert store.outbox.mark_sent(stale.outbox_id, clock.now, "ts-1") is True
    assert statuses(store) == {"sent": 1}
    assert store.outbox.claim_due(clock.now + timedelta(days=2), 10, LEASE) == []


def test_a_claimant_whose_lease_ran_out_cannot_undo_the_next_claim(
    store: Store, other: Store,
) -> None:
    clock = Clock()
    stale, current = taken_over(store, other, clock)
    silence = Silence(1, "rule", "r1", "drop", "", "me", clock.now, clock.now + LEASE)
    assert store.outbox.mark_retry(stale, "HTTP 503", clock.now) is False
    assert store.outbox.defer(stale, "throttled", clock.now) is False
    assert store.outbox.hold(stale, "throttled") is False
    assert store.outbox.mark_failed(stale, "gave up") is False
    assert store.outbox.silence_claimed(stale, silence, False) is False
    store.outbox.release([stale])
    assert statuses(store) == {"sending": 1}
    assert store.outbox.claim_due(clock.now + timedelta(minutes=1), 10, LEASE) == []
    assert other.outbox.mark_retry(current, "HTTP 503", clock.now) is True
    with store.transaction() as conn:
        assert conn.execute(sa.select(outbox.c.attempts)).scalar_one() == 2


class Gated(Recorder):
    """A channel whose sends wait for ``go``, then succeed or fail with ``error``."""

    def __init__(self, error: ChannelError | None = None) -> None:
        super().__init__("desk")
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.error = error

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        self.started.set()
        await self.go.wait()
        if self.error is not None:
            raise self.error
        return await super().send(alert, thread)


def test_a_round_whose_lease_ran_out_mid_send_never_gets_its_row_sent_a_third_time(
    store: Store, other: Store,
) -> None:
    """Round A's send outlasts the lease (its renewals never came: the clock jumped);
    round B takes the row over and fails after A recorded the send."""
    clock = Clock()
    file(store, clock, (1, make_alert(1), {}))
    slow = Gated()
    failing = Gated(ChannelError("desk", "HTTP 503", ChannelFailure.SERVER))

    async def rounds() -> None:
        a = asyncio.create_task(deliverer(store, clock, {"desk": slow}).deliver_due())
        await slow.started.wait()
        clock.now += LEASE + timedelta(seconds=1)
        b = asyncio.create_task(deliverer(other, clock, {"desk": failing}).deliver_due())
        await failing.started.wait()
        slow.go.set()
        assert (await a).sent == 1
        failing.go.set()
        await b

    asyncio.run(rounds())
    later = Recorder("desk")
    clock.now += timedelta(hours=1)
    asyncio.run(deliverer(store, clock, {"desk": later}).deliver_due())
    assert later.sent == []
    assert statuses(store) == {"sent": 1}


# --- renewing the lease while a slow send is under way ---------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def test_a_slow_slack_send_keeps_its_lease_and_no_other_node_sends_it_again(
    store: Store, other: Store, slack_server: SlackServer,
) -> None:
    file(store, Clock(), (1, make_alert(1), {}))
    slack_server.delay = SLOW
    settings = DeliverySettings(lease=SHORT)

    def node(on: Store) -> Deliverer:
        return Deliverer(on.outbox, on.channel_health, direct,
                         {"desk": api_channel(slack_server, timeout="10s")}, {}, {}, settings, now)

    async def two_nodes() -> tuple[int, int]:
        first = asyncio.create_task(node(store).deliver_due())
        await asyncio.sleep(SHORT.total_seconds() * 4 / 3)  # the lease it took has run out
        second = await node(other).deliver_due()
        return (await first).sent, second.sent

    assert asyncio.run(two_nodes()) == (1, 0)
    assert len(slack_server.posts) == 1
    assert statuses(store) == {"sent": 1}


def test_a_digest_outlasting_its_job_lease_is_sent_by_one_node_only(
    store: Store, other: Store, slack_server: SlackServer,
) -> None:
    file(store, Clock(), (1, make_alert(1), {"in_digest": True, "hold": True}))
    slack_server.delay = SLOW
    digest_only = {"desk": ConsoleChannelSettings(type="console", digest="0 8 * * *",
                                                  immediate=False)}

    def node(on: Store, name: str) -> Sending:
        channels = {"desk": api_channel(slack_server, timeout="10s")}
        d = Deliverer(on.outbox, on.channel_health, direct, channels, digest_only, {},
                      DeliverySettings(), now)
        return Sending(d, channels, on, direct, name, SHORT, now)

    async def two_nodes() -> tuple[int, int, int]:
        first = asyncio.create_task(node(store, "a").send_digest("desk"))
        await asyncio.sleep(SHORT.total_seconds() * 4 / 3)  # the job's lease has run out
        second = await node(other, "b").send_digest("desk")
        done = await first
        return done, second, await node(other, "b").send_digest("desk")

    assert asyncio.run(two_nodes()) == (1, 0, 0)
    assert len(slack_server.posts) == 1
    assert statuses(store) == {"sent": 1}


class SlowDigests(Recorder):
    """A channel whose digests take ``seconds`` to send."""

    def __init__(self, seconds: float) -> None:
        super().__init__("desk")
        self.seconds = seconds

    async def send_digest(self, digest: Digest) -> None:
        await asyncio.sleep(self.seconds)
        await super().send_digest(digest)


def test_a_job_lease_renewal_still_running_as_the_digest_ends_does_not_outlive_its_release(
    store: Store, other: Store,
) -> None:
    """The daemon's database calls run on a pool of threads (several on PostgreSQL): a
    renewal of the digest's job lease, slow in its thread, still runs when the digest is
    sent. The job is released after that renewal, never before it, so the renewal cannot
    take the lease again: the next node can send the channel's next digest."""
    clock = Clock()  # the leases' times: fixed, so the lease a late renewal took is live
    lease = timedelta(seconds=0.3)  # renewed every 0.1 s of real time
    file(store, clock, (1, make_alert(1), {"in_digest": True, "hold": True}))
    digest_only = {"desk": ConsoleChannelSettings(type="console", digest="0 8 * * *",
                                                  immediate=False)}
    released, renewed = threading.Event(), threading.Event()
    claims: list[None] = []

    def run(function: Callable[..., Any], *args: Any) -> Any:
        if function == store.nodes.release_job:
            released.set()
        renewal = function == store.nodes.claim_job and len(claims) == 1
        if function == store.nodes.claim_job:
            claims.append(None)
        if renewal:
            released.wait(timeout=1)  # slow: the digest ends meanwhile
        try:
            return function(*args)
        finally:
            if renewal:
                renewed.set()

    async def threaded(function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(run, function, *args)

    async def digest() -> int:
        channels = {"desk": SlowDigests(0.2)}
        d = Deliverer(store.outbox, store.channel_health, threaded, channels, digest_only, {},
                      DeliverySettings(), clock)
        sent = await Sending(d, channels, store, threaded, "a", lease, clock).send_digest("desk")
        await asyncio.to_thread(renewed.wait, 5)
        return sent

    assert asyncio.run(digest()) == 1
    assert renewed.is_set()
    assert other.nodes.claim_job("digest:desk", "b", clock.now, lease)


def test_work_ending_mid_renewal_waits_for_it_and_a_cancelled_wait_stops_renewing() -> None:
    hanging = asyncio.Event()  # never set: a renewal the database does not answer

    async def renew() -> None:
        await hanging.wait()

    async def work() -> None:
        async with renewing(renew, timedelta(seconds=0.03), "a test"):
            await asyncio.sleep(0.05)

    async def cancelled_while_waiting() -> set[asyncio.Task[Any]]:
        task = asyncio.create_task(work())
        await asyncio.sleep(0.2)
        assert not task.done()  # the work is over; it waits for the renewal under way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        current = asyncio.current_task()
        return {t for t in asyncio.all_tasks() if t is not current}  # no keeper left

    assert asyncio.run(cancelled_while_waiting()) == set()


def test_a_channel_whose_round_breaks_leaves_no_other_channel_sending_without_its_lease(
    store: Store, other: Store,
) -> None:
    """The database fails under one channel's round (recording a send); the round ends
    only once the other channel's slow send is done, its lease renewed meanwhile, so no
    other node takes that row over and sends it again."""
    file(store, Clock(), (1, make_alert(1, "slow"), {}), (2, make_alert(2, "fast"), {}))
    slow, fast, again = Gated(), Recorder("fast"), Recorder("slow")
    slow.name = "slow"
    settings = DeliverySettings(lease=SHORT)

    async def flaky_db(function: Callable[..., Any], *args: Any) -> Any:
        if function == store.outbox.mark_sent and args[0] == 2:
            raise sa.exc.OperationalError("UPDATE outbox", {}, Exception("server closed"))
        return function(*args)

    async def two_nodes() -> int:
        first = asyncio.create_task(Deliverer(
            store.outbox, store.channel_health, flaky_db, {"slow": slow, "fast": fast}, {}, {},
            settings, now,
        ).deliver_due())
        await slow.started.wait()
        await asyncio.sleep(SHORT.total_seconds() * 4 / 3)  # the lease it took has run out
        second = await Deliverer(other.outbox, other.channel_health, direct, {"slow": again},
                                 {}, {}, settings, now).deliver_due()
        slow.go.set()
        with pytest.raises(sa.exc.OperationalError):
            await first
        return second.sent

    assert asyncio.run(two_nodes()) == 0
    assert (len(slow.sent), len(again.sent)) == (1, 0)
