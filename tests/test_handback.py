"""Polled sources given back together: one transaction for the polls that end at
once, each source due again at its own time, lease semantics kept, on every back-end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.handback import Handback, Polled
from monitor.store import SourceState, Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
NAMES = [f"feed-{i:02d}" for i in range(20)]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url).open()
    opened.nodes.add_sources([(name, url(name)) for name in NAMES])
    yield opened
    opened.close()


def url(name: str) -> str:
    return f"http://feeds.example/{name}"


async def in_thread(function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


def give_back(store: Store, node_id: str, polled: list[Polled]) -> list[list[str]]:
    """Give ``polled`` back as polls ending together would; the names of each write."""
    writes: list[list[str]] = []
    release_all = store.nodes.release_all

    def counted(node: str, due: dict[str, datetime], states: list[SourceState]) -> set[str]:
        writes.append(sorted(due))
        return release_all(node, due, states)

    store.nodes.release_all = counted  # type: ignore[method-assign]
    handback = Handback(node_id, store, in_thread)

    async def go() -> list[bool]:
        return list(await asyncio.gather(*(handback.give_back(p) for p in polled)))

    try:
        assert all(asyncio.run(go()))
    finally:
        del store.nodes.release_all
    return writes


def test_polls_that_end_together_are_given_back_in_one_transaction_with_their_states(
        store: Store) -> None:
    assert store.nodes.claim_due("a", NAMES, NOW, LEASE, 20) == NAMES
    due = {name: NOW + timedelta(minutes=15 + i) for i, name in enumerate(NAMES)}
    unchanged = {name: SourceState(name, url(name), etag=f'"{name}"', last_success_at=NOW)
                 for name in NAMES[:15]}  # 304s; the other five stored their own
    writes = give_back(store, "a", [Polled(name, due[name], unchanged.get(name))
                                    for name in NAMES])
    assert writes == [NAMES]
    schedule = store.nodes.schedule()
    assert {name: schedule[name].due_at for name in NAMES} == due
    assert {schedule[name].last_node for name in NAMES} == {"a"}
    states = {s.name: s for s in store.source_states()}
    assert all(states[name] == unchanged[name] for name in NAMES[:15])
    assert store.nodes.claim_due("b", NAMES, due[NAMES[-1]] - timedelta(minutes=5),
                                 LEASE, 20) == NAMES[:15]


def test_a_failing_source_given_back_with_its_state_comes_back_when_its_backoff_ends(
        store: Store) -> None:
    (name,) = store.nodes.claim_due("a", NAMES[:1], NOW, LEASE, 1)
    backoff_ends = NOW + timedelta(hours=2)
    failed = SourceState(name, url(name), last_error="HTTP 500", consecutive_failures=3,
                         next_poll_at=backoff_ends)
    give_back(store, "a", [Polled(name, NOW + timedelta(minutes=15), failed)])
    assert store.nodes.claim_due("a", NAMES[:1], NOW + timedelta(hours=1), LEASE, 1) == []
    assert store.nodes.claim_due("a", NAMES[:1], backoff_ends, LEASE, 1) == [name]


def test_a_source_whose_lease_was_lost_stays_with_the_node_that_took_it_over(
        store: Store) -> None:
    store.nodes.claim_due("dead", NAMES[:2], NOW, LEASE, 2)
    later = NOW + LEASE + timedelta(seconds=1)
    assert store.nodes.claim_due("b", NAMES[:1], later, LEASE, 1) == NAMES[:1]
    # The slow node's answer comes late: one lease is still its own, one is not.
    held = store.nodes.release_all("dead", {name: NOW + timedelta(minutes=15)
                                            for name in NAMES[:2]})
    assert held == {NAMES[1]}
    holders = {n: s.last_node for n, s in store.nodes.schedule().items()}
    assert holders[NAMES[1]] == "dead"
    assert store.nodes.claim_due("c", NAMES[:1], later, LEASE, 1) == []  # b holds it
    assert store.nodes.release(NAMES[0], "b", NOW + timedelta(minutes=15)) is True
