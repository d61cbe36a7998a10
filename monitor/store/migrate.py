"""Schema versions: a new database gets the current schema; an old one is upgraded step
by step; a newer one is refused (a node must not write a schema it does not know).

To change the schema: edit ``schema.py``, bump ``SCHEMA_VERSION``, and add the
step from the previous version to ``STEPS`` (DDL on the connection). A test
checks that an upgraded database has the same tables as a new one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Table, bindparam, inspect, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.errors import StoreError
from monitor.identity import content_fingerprint, link_key
from monitor.store.schema import (
    article_aliases,
    articles,
    channel_state,
    job_leases,
    meta,
    metadata,
    nodes,
    outbox,
    silences,
    sources,
)

SCHEMA_VERSION = 8


def _add_columns(conn: Connection, table: Table, names: list[str]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for columns as ``schema.py`` defines them now."""
    for name in names:
        column = table.c[name]
        ddl = f"ALTER TABLE {table.name} ADD COLUMN {name} {column.type.compile(conn.dialect)}"
        if column.server_default is not None:
            default = column.server_default.arg  # type: ignore[attr-defined]
            value = default.compile(dialect=conn.dialect) if hasattr(default, "compile") else (
                f"'{default}'")
            ddl += f" DEFAULT {value}"
        if not column.nullable:
            ddl += " NOT NULL"
        conn.execute(text(ddl))


def _v1_to_v2(conn: Connection) -> None:
    """Follow-ups, digests and channel state."""
    _add_columns(conn, outbox, ["kind", "parent_id", "remote_id", "in_digest", "digested_at"])
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE outbox ALTER COLUMN dedupe_key TYPE VARCHAR(200)"))
    for index in outbox.indexes:
        if index.name == "ix_outbox_channel_digest":
            index.create(conn)
    channel_state.create(conn)


def _v2_to_v3(conn: Connection) -> None:
    """Feeds discovered from a web page; source health."""
    _add_columns(conn, sources, ["feed_url", "failing_since", "last_new_at", "gap_mean",
                                 "gaps_seen", "health_alert"])


def _v3_to_v4(conn: Connection) -> None:
    """Silences, and the silence an alert was planned under."""
    _add_columns(conn, outbox, ["silence_id"])
    silences.create(conn)


def _v4_to_v5(conn: Connection) -> None:
    """Feed identities of articles renamed by their page's canonical link."""
    article_aliases.create(conn)


def _v5_to_v6(conn: Connection) -> None:
    """Several nodes on one database: source leases, shared due times, the node registry,
    job leases."""
    _add_columns(conn, sources, ["lease_owner", "lease_until", "due_at", "last_node"])
    for index in sources.indexes:
        if index.name == "ix_sources_due":
            index.create(conn)
    nodes.create(conn)
    job_leases.create(conn)


def _v6_to_v7(conn: Connection) -> None:
    """Articles recognised by canonical link and content fingerprint; copies of another
    source's article. Stored articles get their keys, so the first poll after the
    upgrade recognises them whichever way it looks."""
    _add_columns(conn, articles, ["link_key", "fingerprint"])
    # A foreign key added to an existing table: SQLite takes it in ADD COLUMN only.
    reference = " REFERENCES articles (id) ON DELETE SET NULL"
    kind = articles.c.duplicate_of.type.compile(conn.dialect)
    conn.execute(text(f"ALTER TABLE articles ADD COLUMN duplicate_of {kind}{reference}"))
    for index in articles.indexes:
        if index.name in ("ix_articles_link_key", "ix_articles_fingerprint"):
            index.create(conn)
    after = 0
    fill = update(articles).where(articles.c.id == bindparam("row_id")).values(
        link_key=bindparam("key"), fingerprint=bindparam("text_key"))
    while rows := conn.execute(
        select(articles.c.id, articles.c.url, articles.c.title, articles.c.summary,
               articles.c.content).where(articles.c.id > after).order_by(articles.c.id)
        .limit(1000)
    ).all():
        conn.execute(fill, [{"row_id": r.id, "key": link_key(r.url),
                             "text_key": content_fingerprint(r.title, r.summary, r.content)}
                            for r in rows])
        after = rows[-1].id


def _v7_to_v8(conn: Connection) -> None:
    """The fingerprints of each source's last fetched entries (``entry_texts``)."""
    _add_columns(conn, sources, ["entry_texts"])


# STEPS[n] upgrades a database from version n to n + 1.
STEPS: dict[int, Callable[[Connection], None]] = {
    1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6,
    6: _v6_to_v7, 7: _v7_to_v8,
}


def stored_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(meta.name):
        return None
    row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
    return int(row[0]) if row else None


def migrate(conn: Connection) -> int:
    """Bring the database to ``SCHEMA_VERSION``; return the version it had (0 if new).

    Nodes opening the database together take turns: the first creates or upgrades the
    schema, the others wait for it and then find it done. PostgreSQL: an advisory lock
    held until the caller's transaction ends. SQLite: the write lock, taken before the
    version is read (``BEGIN IMMEDIATE``; the others wait out the busy timeout), unless
    the schema is already current, so opening beside a busy writer does not wait for it.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema()"
                          " || ':newsmon:migrate'))"))
    elif conn.dialect.name == "sqlite":
        if stored_version(conn) == SCHEMA_VERSION:
            return SCHEMA_VERSION
        # pysqlite leaves DDL outside any transaction; this one makes the creation or
        # upgrade below one transaction, which the caller's commit ends.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    version = stored_version(conn)
    if version is None:
        metadata.create_all(conn)
        _insert_once(conn, meta, key="schema_version", value=str(SCHEMA_VERSION))
        return 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database has schema version {version}, newer than this newsmon knows"
            f" ({SCHEMA_VERSION}): upgrade newsmon"
        )
    for step in range(version, SCHEMA_VERSION):
        STEPS[step](conn)
        conn.execute(
            meta.update().where(meta.c.key == "schema_version").values(value=str(step + 1))
        )
    return version


def _insert_once(conn: Connection, table: Table, **values: str) -> None:
    """Insert a row, unless one with its primary key is there (left as it is)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(table).values(**values).on_conflict_do_nothing())
