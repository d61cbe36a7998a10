"""Several nodes on one database, on every back-end: source leases, due times, the node
registry, and one alert per (rule, story, channel) when nodes race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.store import SourceState, Store
from monitor.store.nodes import NodeInfo
from tests.test_store import alert, planned

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
NAMES = [f"feed-{i:02d}" for i in range(20)]


def node(name: str) -> NodeInfo:
    return NodeInfo(f"{name}:1:abc", name, 1, NOW)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url).open()
    opened.nodes.add_sources([(name, f"http://feeds.example/{name}") for name in NAMES])
    yield opened
    opened.close()


@pytest.fixture
def other(store_url: str, store: Store) -> Iterator[Store]:
    """A second node's connection to the same database."""
    opened = Store(store_url).open()
    yield opened
    opened.close()


def test_a_new_source_is_due_at_once_and_claimed_by_one_node_only(
        store: Store, other: Store) -> None:
    first = store.nodes.claim_due("a", NAMES, NOW, LEASE, 100)
    assert first == NAMES
    assert other.nodes.claim_due("b", NAMES, NOW, LEASE, 100) == []


def test_a_node_claims_no_more_than_it_asks_for_and_another_takes_the_rest(
        store: Store, other: Store) -> None:
    first = store.nodes.claim_due("a", NAMES, NOW, LEASE, 8)
    second = other.nodes.claim_due("b", NAMES, NOW, LEASE, 100)
    assert len(first) == 8
    assert sorted(first + second) == NAMES


def test_nodes_claiming_at_once_never_share_a_source(store: Store, other: Store) -> None:
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claim(name: str, claimant: Store) -> None:
        start.wait()
        for _ in range(10):
            claimed[name] += claimant.nodes.claim_due(name, NAMES, NOW, LEASE, 3)

    threads = [threading.Thread(target=claim, args=("a", store)),
               threading.Thread(target=claim, args=("b", other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    together = claimed["a"] + claimed["b"]
    assert sorted(together) == NAMES


def test_a_dead_nodes_sources_are_taken_over_when_its_lease_expires(
        store: Store, other: Store) -> None:
    store.nodes.claim_due("dead", NAMES[:1], NOW, LEASE, 1)
    assert other.nodes.claim_due("b", NAMES[:1], NOW + LEASE - timedelta(seconds=1),
                                 LEASE, 1) == []
    assert other.nodes.claim_due("b", NAMES[:1], NOW + LEASE + timedelta(seconds=1),
                                 LEASE, 1) == NAMES[:1]
    # The dead node's late answer changes nothing: the lease is no longer its own.
    assert store.nodes.release(NAMES[0], "dead", NOW + timedelta(minutes=15)) is False
    assert other.nodes.release(NAMES[0], "b", NOW + timedelta(minutes=15)) is True


def test_a_heartbeat_keeps_a_long_poll_leased(store: Store, other: Store) -> None:
    alive = node("alive")
    store.nodes.register(alive, NOW)
    store.nodes.claim_due(alive.id, NAMES[:1], NOW, LEASE, 1)
    assert store.nodes.heartbeat(alive, NOW + timedelta(seconds=25), LEASE) == 1
    assert other.nodes.claim_due("b", NAMES[:1], NOW + timedelta(seconds=50), LEASE, 1) == []


def test_a_polled_source_is_due_again_after_its_interval_for_every_node(
        store: Store, other: Store) -> None:
    (name,) = store.nodes.claim_due("a", NAMES[:1], NOW, LEASE, 1)
    store.nodes.release(name, "a", NOW + timedelta(minutes=15))
    later = NOW + timedelta(minutes=14, seconds=59)
    assert other.nodes.claim_due("b", NAMES[:1], later, LEASE, 1) == []
    assert store.nodes.claim_due("a", NAMES[:1], later, LEASE, 1) == []
    assert other.nodes.claim_due("b", NAMES[:1], NOW + timedelta(minutes=15), LEASE, 1) == [name]


def test_a_failing_source_comes_back_when_its_backoff_ends(store: Store) -> None:
    (name,) = store.nodes.claim_due("a", NAMES[:1], NOW, LEASE, 1)
    backoff_ends = NOW + timedelta(hours=2)
    store.record_failure(SourceState(name, f"http://feeds.example/{name}", last_error="HTTP 500",
                                     consecutive_failures=3, next_poll_at=backoff_ends), NOW)
    store.nodes.release(name, "a", NOW + timedelta(minutes=15))
    assert store.nodes.claim_due("a", NAMES[:1], NOW + timedelta(hours=1), LEASE, 1) == []
    assert store.nodes.claim_due("a", NAMES[:1], backoff_ends, LEASE, 1) == [name]


def test_a_shorter_interval_brings_a_poll_forward_but_never_postpones_one_due_now(
        store: Store) -> None:
    """After a reload: a source given back is due sooner; one due at once (never polled
    yet, or due at a restart) stays due at once."""
    polled, waiting = NAMES[:2]
    store.nodes.claim_due("a", [polled], NOW, LEASE, 1)
    store.nodes.release(polled, "a", NOW + timedelta(hours=6))
    store.nodes.due_by({polled: NOW + timedelta(minutes=10),
                        waiting: NOW + timedelta(minutes=10)})
    assert store.nodes.claim_due("a", [polled, waiting], NOW, LEASE, 2) == [waiting]
    later = NOW + timedelta(minutes=10)
    assert store.nodes.claim_due("a", [polled], later, LEASE, 1) == [polled]


def test_a_run_once_claim_ignores_due_times_but_not_other_nodes_leases(
        store: Store, other: Store) -> None:
    store.nodes.claim_due("a", NAMES[:2], NOW, LEASE, 2)
    store.nodes.release(NAMES[0], "a", NOW + timedelta(hours=1))
    assert other.nodes.claim_due("b", NAMES[:2], NOW, LEASE, 2, ignore_due=True) == NAMES[:1]


def test_the_live_nodes_are_listed_with_the_sources_they_hold(store: Store, other: Store) -> None:
    a, b, gone = node("a"), node("b"), node("gone")
    store.nodes.register(gone, NOW - timedelta(minutes=5))
    store.nodes.register(a, NOW)
    other.nodes.register(b, NOW)
    store.nodes.claim_due(a.id, NAMES[:2], NOW, LEASE, 2)
    other.nodes.claim_due(b.id, NAMES[2:3], NOW, LEASE, 1)
    alive = {n.id: n.holding for n in store.nodes.alive(NOW + timedelta(seconds=5), LEASE)}
    assert alive == {a.id: tuple(NAMES[:2]), b.id: (NAMES[2],)}


def test_a_node_that_leaves_hands_its_sources_over_at_once(store: Store, other: Store) -> None:
    a = node("a")
    store.nodes.register(a, NOW)
    store.nodes.claim_due(a.id, NAMES[:3], NOW, LEASE, 3)
    store.nodes.leave(a.id)
    assert store.nodes.alive(NOW, LEASE) == []
    assert other.nodes.claim_due("b", NAMES[:3], NOW, LEASE, 3) == NAMES[:3]


def test_two_nodes_racing_to_alert_on_one_story_file_one_alert_and_a_follow_up(
        store: Store, other: Store) -> None:
    """Two nodes store two outlets' articles of the same story at the same moment: the
    unique (rule, story, channel) decides, and the loser's article becomes a follow-up
    without an error."""
    rounds = 15
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def save(claimant: Store, outlet: str) -> None:
        for i in range(rounds):
            story = f"story-{i}"
            identity = f"{outlet}-{i}"
            filed = replace(alert(story=story), article_identity=identity)
            item = planned(identity, (filed, story), follow_ups="thread")
            start.wait()
            try:
                claimant.save_batch(SourceState(outlet, "u"), [item], NOW)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=save, args=(store, "wire")),
               threading.Thread(target=save, args=(other, "observer"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    kinds: dict[str, int] = {}
    while batch := store.outbox.claim_due(NOW, 1000, LEASE):  # each follow-up after its alert
        for delivery in batch:
            kinds[delivery.alert.kind] = kinds.get(delivery.alert.kind, 0) + 1
            store.outbox.mark_sent(delivery.outbox_id, NOW)
    assert kinds == {"alert": rounds, "follow_up": rounds}


def test_one_node_at_a_time_runs_a_job_and_a_dead_nodes_claim_expires(
        store: Store, other: Store) -> None:
    assert store.nodes.claim_job("digest:desk", "a", NOW, LEASE) is True
    assert other.nodes.claim_job("digest:desk", "b", NOW, LEASE) is False
    assert other.nodes.claim_job("digest:other", "b", NOW, LEASE) is True
    assert other.nodes.claim_job("digest:desk", "b", NOW + LEASE + timedelta(seconds=1),
                                 LEASE) is True
    other.nodes.release_job("digest:desk", "b")
    assert store.nodes.claim_job("digest:desk", "a", NOW + LEASE, LEASE) is True
