"""Polls that ask for their stored articles at the same moment are answered together,
in one transaction, on every back-end, and each is given exactly what it would have
been given alone: its own known entries, copies' originals, nothing of another poll's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from monitor.batched import Batched
from monitor.identity import StoredArticle, content_fingerprint
from monitor.records import Article
from monitor.store import NewArticle, SourceState, Store
from monitor.store.recall import CHUNK, Recall
from tests.conftest import SEEDS, FeedServer
from tests.test_daemon import console, cycle
from tests.test_shared_stories import settings
from tests.test_store_dedupe import NOW, article

WIRE = (SEEDS / "feeds" / "wire.xml").read_bytes()
WIRE_ITEMS = WIRE.count(b"<item>")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url).open()
    yield opened
    opened.close()


def keys_only(item: Article) -> Article:
    """An entry the last poll saw, normalised to its keys (``entry_texts``)."""
    return replace(item, title="", summary="", content="")


def headline(identity: str, source: str) -> Article:
    """A bare headline: a title and nothing else, the same at every outlet."""
    return replace(article(identity, source, title="Live updates", text=""), url=None)


def stored(store: Store) -> dict[str, int]:
    with store.transaction() as conn:
        return {identity: int(id_) for id_, identity in
                conn.execute(sa.text("SELECT id, identity FROM articles"))}


def recall_together(store: Store, asked: list[Recall]) -> tuple[list[list[StoredArticle]], int]:
    """The polls' recalls, asked at once as polls ending together ask them; and how many
    transactions answered them."""
    transactions = 0
    transaction = store.transaction

    def counted() -> AbstractContextManager[Connection]:
        nonlocal transactions
        transactions += 1
        return transaction()

    async def in_thread(batch: list[Recall]) -> list[list[StoredArticle]]:
        return await asyncio.to_thread(store.recall_many, batch)

    recall: Batched[Recall, list[StoredArticle]] = Batched(in_thread)

    async def go() -> list[list[StoredArticle]]:
        return list(await asyncio.gather(*(recall(one) for one in asked)))

    store.transaction = counted  # type: ignore[method-assign]
    try:
        return asyncio.run(go()), transactions
    finally:
        del store.transaction


def test_polls_asking_together_are_recalled_in_one_transaction_each_with_exactly_its_own(
        store: Store) -> None:
    wire_1 = article("w1")
    copy = replace(article("d1", "daily"), fingerprint=wire_1.fingerprint)
    rewritten = replace(article("b1", "blog", text="Another account of it."), url=wire_1.url)
    aliased = article("w3", text="A third story.")
    store.save_batch(SourceState("wire", "u"), [
        NewArticle(wire_1, "s1", (), ()), NewArticle(headline("w2", "wire"), "s2", (), ()),
        NewArticle(aliased, "s3", (), ())], NOW, aliases=[("wire-feed-3", "w3")])
    ids = stored(store)
    store.save_batch(SourceState("daily", "u"), [
        NewArticle(copy, "s1", (), (), duplicate_of=ids["w1"]),
        NewArticle(headline("d2", "daily"), "s4", (), ())], NOW)
    store.save_batch(SourceState("blog", "u"), [NewArticle(rewritten, "s5", (), ())], NOW)
    unknown = [article(f"bulk-{n}", "bulk", text=f"Item {n}.") for n in range(CHUNK + 20)]
    bulk_known = article("bulk-known", "bulk", text="Known in bulk.")
    store.save_batch(SourceState("bulk", "u"), [NewArticle(bulk_known, "s6", (), ())], NOW)
    ids = stored(store)

    asked: list[Recall] = [
        # its own entries known by their keys alone, a bare headline under a new guid,
        # an item whose identity is kept as an alias, and one never seen
        ("wire", [keys_only(wire_1), headline("w2-again", "wire"),
                  replace(article("wire-feed-3", text="A third story."),
                          url="https://wire.example/feed-3"),
                  article("w-new", text="Nothing like it.")]),
        # another outlet's text (found with its copy), and its own bare headline only
        ("daily", [replace(article("d9", "daily"), url=None,
                           fingerprint=content_fingerprint(wire_1.title, wire_1.summary, "")),
                   headline("d2-again", "daily")]),
        ("blog", [replace(article("b9", "blog", text="New."), url=wire_1.url)]),
        ("mirror", [replace(article("m1", "mirror", text="Mirrored."), url=aliased.url)]),
        ("quiet", []),
        ("bulk", [*unknown[:CHUNK - 5], bulk_known, *unknown[CHUNK - 5:]]),  # two chunks
    ]
    together, transactions = recall_together(store, asked)

    assert transactions == 1
    found = [[(row.identity, row.aliases) for row in rows] for rows in together]
    assert found == [
        [("w1", ()), ("w2", ()), ("w3", ("wire-feed-3",)), ("b1", ())],  # b1: w1's link
        [("w1", ()), ("d1", ()), ("d2", ())],
        [("w1", ()), ("b1", ())],
        [("w3", ())],  # the alias is the wire poll's, not this one's
        [],
        [("bulk-known", ())],
    ]
    assert together[1][1].duplicate_of == ids["w1"]
    assert together == [store.recall(source, fetched) for source, fetched in asked]


def test_a_recall_asked_while_one_is_under_way_goes_with_the_next_and_sees_what_was_stored(
        store: Store) -> None:
    """A batch starts after every poll in it asked: a poll that asks once another poll's
    articles are committed is given them, however the batches fall."""
    batches: list[list[str]] = []
    first_running = asyncio.Event()
    go_on = asyncio.Event()

    async def recall_many(batch: list[Recall]) -> list[list[StoredArticle]]:
        batches.append([source for source, _ in batch])
        answers = await asyncio.to_thread(store.recall_many, batch)
        if len(batches) == 1:  # answered; not yet handed back
            first_running.set()
            await go_on.wait()
        return answers

    async def go() -> list[list[StoredArticle]]:
        recall: Batched[Recall, list[StoredArticle]] = Batched(recall_many)
        first = asyncio.create_task(recall(("wire", [article("w1")])))
        await first_running.wait()
        store.save_batch(SourceState("wire", "u"), [NewArticle(article("w1"), "s1", (), ())],
                         NOW)
        later = [asyncio.create_task(recall((source, [article(f"{source}-1", source),
                                                      replace(article("w1"), source=source)])))
                 for source in ("daily", "blog")]
        await asyncio.sleep(0)
        go_on.set()
        return [await first, *[await task for task in later]]

    first, daily, blog = asyncio.run(go())
    assert batches == [["wire"], ["daily", "blog"]]
    assert first == []  # asked before it was stored
    assert [row.identity for row in daily] == [row.identity for row in blog] == ["w1"]


def test_a_batch_that_fails_fails_each_of_its_polls_and_the_next_batch_still_runs() -> None:
    calls: list[list[str]] = []

    async def flaky(batch: list[str]) -> list[str]:
        calls.append(batch)
        await asyncio.sleep(0.01)
        if "broken" in batch:
            raise RuntimeError("database away")
        return [item.upper() for item in batch]

    async def go() -> list[object]:
        batched: Batched[str, str] = Batched(flaky)
        first = asyncio.gather(batched("broken"), batched("with-it"), return_exceptions=True)
        await asyncio.sleep(0)
        after = asyncio.create_task(batched("after"))
        return [*await first, await after]

    broken, with_it, after = asyncio.run(go())
    assert calls == [["broken", "with-it"], ["after"]]
    assert isinstance(broken, RuntimeError)
    assert isinstance(with_it, RuntimeError)
    assert after == "AFTER"


class SlowRecallStore(Store):
    """A database on which a recall takes a while: polls reaching theirs meanwhile wait."""

    batches: ClassVar[list[int]] = []

    def recall_many(self, asked: Any) -> Any:
        SlowRecallStore.batches.append(len(asked))
        time.sleep(0.3)
        return super().recall_many(asked)


def test_polls_of_one_feed_carried_by_four_sources_recall_together_and_store_it_once(
    tmp_path: Path, feed_server: FeedServer, store_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hardest case for answering polls together: four sources carry the same items
    at the same moment. Each item is stored once with its alerts, and three times as a
    copy, never alerted, as when each source's recall had a transaction of its own."""
    names = ["wire-a", "wire-b", "wire-c", "wire-d"]
    sources = [{"name": name, "url": feed_server.serve(f"/{name}.xml", WIRE)} for name in names]
    alone = settings(tmp_path / "alone", f"sqlite:///{tmp_path / 'alone.db'}", sources[:1])
    (single,) = cycle(alone, {"console": console()[0]})

    monkeypatch.setattr(SlowRecallStore, "batches", [])
    monkeypatch.setattr("tests.test_daemon.Store", SlowRecallStore)
    (report,) = cycle(settings(tmp_path, store_url, sources), {"console": console()[0]})

    assert max(SlowRecallStore.batches) > 1
    assert sum(p.alerts for p in report.polls) == sum(p.alerts for p in single.polls) > 0
    engine = sa.create_engine(Store(store_url).url)
    with engine.connect() as conn:
        kinds = conn.execute(sa.text(
            "SELECT count(*) FILTER (WHERE duplicate_of IS NULL),"
            " count(*) FILTER (WHERE duplicate_of IS NOT NULL) FROM articles")).one()
    engine.dispose()
    assert tuple(kinds) == (WIRE_ITEMS, 3 * WIRE_ITEMS)
