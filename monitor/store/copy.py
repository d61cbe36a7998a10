"""Stage *store*: move a whole state from one database to another (``newsmon migrate``),
e.g. a single node's SQLite file to the PostgreSQL database several nodes will share.

Everything a node remembers goes: sources (validators, backoff, health, due times),
articles with their story ids and aliases, hits, the outbox with its sent history (so
nothing is alerted again), channel state, silences. Ids are kept, so follow-ups still
point at their alerts. Leases and the node registry stay behind: they belong to running nodes.

The target is written in one transaction: a failed copy leaves it as it was. A
target that already holds a state is refused unless ``replace`` is given (then its
state is deleted first, in the same transaction); a target with nodes running is
always refused. Stop the daemon on the source before copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Table, delete, func, select, text

from monitor.errors import StoreError
from monitor.store.schema import (
    article_aliases,
    articles,
    channel_state,
    hits,
    outbox,
    silences,
    sources,
)
from monitor.store.store import Store

# In the order rows may be inserted (articles before what refers to them).
TABLES: tuple[Table, ...] = (sources, channel_state, silences, articles, article_aliases, hits,
                             outbox)
BATCH = 1000


@dataclass(frozen=True, slots=True)
class CopyReport:
    rows: dict[str, int]  # table name -> rows copied


def copy_state(source: Store, target: Store, *, replace: bool = False,
               alive_within: timedelta = timedelta(seconds=60)) -> CopyReport:
    """Copy ``source``'s state into ``target`` (both open); ``alive_within``: a node that
    heartbeat this recently on the target is taken to be running."""
    if source.url == target.url:
        raise StoreError("migrate: --from and --to name the same database")
    running = target.nodes.alive(datetime.now(UTC), alive_within)
    if running:
        raise StoreError(f"migrate: {len(running)} newsmon nodes are running on the target"
                         f" ({', '.join(n.id for n in running)}): stop them first")
    copied: dict[str, int] = {}
    with source.transaction() as reading, target.transaction() as writing:
        held = {t.name: _count(writing, t) for t in TABLES}
        if any(held.values()) and not replace:
            raise StoreError("migrate: the target already holds a newsmon state ("
                             + ", ".join(f"{n} {t}" for t, n in held.items() if n)
                             + "); use --replace to overwrite it")
        for table in reversed(TABLES):
            writing.execute(delete(table))
        for table in TABLES:
            copied[table.name] = _copy_table(reading, writing, table, target)
        if writing.dialect.name == "postgresql":
            for table in (silences, articles, hits, outbox):  # new ids follow the copied
                writing.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"
                    f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}), false)"))
    return CopyReport(copied)


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _copy_table(reading: Connection, writing: Connection, table: Table, target: Store) -> int:
    key = next(iter(table.primary_key.columns))
    rows = reading.execution_options(stream_results=True).execute(
        select(table).order_by(key)).mappings()
    copied = 0
    for chunk in rows.partitions(BATCH):
        values = [dict(row) for row in chunk]
        if table is sources:
            for row in values:
                row.update(lease_owner=None, lease_until=None)
        writing.execute(target.insert(table), values)
        copied += len(values)
    return copied
