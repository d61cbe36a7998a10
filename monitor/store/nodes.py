"""Stage *store*, shared by several nodes: the node registry and the sources' leases.

Every node runs the same configuration; the database decides who polls what.
A node claims due sources with one transaction (``SELECT ... FOR UPDATE SKIP
LOCKED`` on PostgreSQL, then a conditional UPDATE that re-checks the lease, so
only one claimant wins even where ``SKIP LOCKED`` does not exist), polls them
while it holds their leases, and gives each back with its next due time. A node
that dies stops renewing its leases (``heartbeat``); they expire and another node
claims the sources. The due time lives in the database, so each source is polled
once per interval across all the nodes, not once per node.

A node gives back the sources whose polls ended together in one transaction
(``release_all``), with the states of those polls that changed nothing else.
Where one transaction changes several sources' rows (a heartbeat, a release), it
locks them first in name order, so that a node's own transactions, running at
once on its database threads, never wait for each other in a circle.

Times come from the nodes' clocks: keep them in sync (NTP); a lease is tens of
seconds, clock skew between servers is milliseconds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from monitor.store.lists import among, as_parameter
from monitor.store.schema import job_leases, nodes, sources

if TYPE_CHECKING:
    from monitor.store.states import SourceState
    from monitor.store.store import Store

FORGET_DEAD_NODES = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    host: str
    pid: int
    started_at: datetime


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A registered node, its last heartbeat and the sources it holds now."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    holding: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceSchedule:
    due_at: datetime | None
    last_node: str | None


class Nodes:
    def __init__(self, store: Store) -> None:
        self._store = store

    # --- the registry --------------------------------------------------------------------

    def register(self, node: NodeInfo, now: datetime) -> None:
        with self._store.transaction() as conn:
            conn.execute(self._store.insert(nodes).values(
                id=node.id, host=node.host, pid=node.pid, started_at=node.started_at,
                heartbeat_at=now).on_conflict_do_update(index_elements=[nodes.c.id],
                                                        set_={"heartbeat_at": now}))

    def heartbeat(self, node: NodeInfo, now: datetime, lease: timedelta) -> int:
        """Say this node is alive and renew the leases it holds; return how many.

        A node forgotten by the others (its row deleted after a long pause) registers
        again. Nodes silent for a day are forgotten.
        """
        with self._store.transaction() as conn:
            alive = conn.execute(update(nodes).where(nodes.c.id == node.id)
                                 .values(heartbeat_at=now)).rowcount
            if not alive:
                conn.execute(nodes.insert().values(
                    id=node.id, host=node.host, pid=node.pid, started_at=node.started_at,
                    heartbeat_at=now))
            held = _lock_in_order(conn, sources.c.lease_owner == node.id)
            renewed = conn.execute(update(sources).where(self._among(held),
                                                         sources.c.lease_owner == node.id)
                                   .values(lease_until=now + lease)).rowcount if held else 0
            conn.execute(update(job_leases).where(job_leases.c.owner == node.id)
                         .values(until=now + lease))
            conn.execute(delete(nodes).where(nodes.c.heartbeat_at < now - FORGET_DEAD_NODES))
        return int(renewed)

    def leave(self, node_id: str) -> None:
        """A node stopping: its sources are due for the others at once."""
        with self._store.transaction() as conn:
            conn.execute(update(sources).where(sources.c.lease_owner == node_id)
                         .values(lease_owner=None, lease_until=None))
            conn.execute(delete(job_leases).where(job_leases.c.owner == node_id))
            conn.execute(delete(nodes).where(nodes.c.id == node_id))

    def alive(self, now: datetime, lease: timedelta) -> list[NodeStatus]:
        """The nodes that heartbeat within ``lease``, each with the sources it holds."""
        with self._store.transaction() as conn:
            rows = conn.execute(select(nodes).where(nodes.c.heartbeat_at >= now - lease)
                                .order_by(nodes.c.started_at, nodes.c.id)).mappings().all()
            held = conn.execute(select(sources.c.lease_owner, sources.c.name)
                                .where(sources.c.lease_owner.is_not(None),
                                       sources.c.lease_until >= now)
                                .order_by(sources.c.name)).all()
        holding: dict[str, list[str]] = {}
        for owner, name in held:
            holding.setdefault(owner, []).append(name)
        return [NodeStatus(r["id"], r["host"], int(r["pid"]), r["started_at"],
                           r["heartbeat_at"], tuple(holding.get(r["id"], ())))
                for r in rows]

    def schedule(self) -> dict[str, SourceSchedule]:
        """Each source's due time and the node that polled it last."""
        with self._store.transaction() as conn:
            rows = conn.execute(select(sources.c.name, sources.c.due_at,
                                       sources.c.last_node)).all()
        return {row.name: SourceSchedule(row.due_at, row.last_node) for row in rows}

    # --- source leases -------------------------------------------------------------------

    def add_sources(self, configured: Sequence[tuple[str, str]]) -> None:
        """Make sure every configured source (name, url) has a row to lease."""
        with self._store.transaction() as conn:
            for start in range(0, len(configured), 500):
                chunk = configured[start : start + 500]
                conn.execute(self._store.insert(sources).on_conflict_do_nothing(),
                             [{"name": name, "url": url, "consecutive_failures": 0,
                               "articles_seen": 0, "gaps_seen": 0} for name, url in chunk])

    def restart_single_node(self) -> None:
        """Single node, starting: leases left by a previous run (killed) are given back,
        and every source is due at once, as a restarted daemon is expected to poll."""
        with self._store.transaction() as conn:
            conn.execute(update(sources).values(lease_owner=None, lease_until=None, due_at=None))

    def claim_due(self, node_id: str, names: Collection[str], now: datetime, lease: timedelta,
                  limit: int, *, ignore_due: bool = False) -> list[str]:
        """Lease up to ``limit`` of ``names`` that are due (or all free ones, with
        ``ignore_due``) and that no live lease holds; the most overdue first."""
        if limit < 1 or not names:
            return []
        claimable = and_(self._among(names),
                         or_(sources.c.lease_until.is_(None), sources.c.lease_until < now))
        if not ignore_due:
            claimable = and_(claimable, or_(sources.c.due_at.is_(None), sources.c.due_at <= now))
        with self._store.transaction() as conn:
            candidates = conn.execute(
                select(sources.c.name).where(claimable)
                .order_by(sources.c.due_at.nulls_first(), sources.c.name)
                .limit(limit).with_for_update(skip_locked=True)
            ).scalars().all()
            if not candidates:
                return []
            won = conn.execute(
                update(sources).where(sources.c.name.in_(candidates), claimable)
                .values(lease_owner=node_id, lease_until=now + lease)
                .returning(sources.c.name)
            ).scalars().all()
        return sorted(won)

    def make_due(self, names: Collection[str]) -> None:
        """Due at once (a source whose URL changed)."""
        with self._store.transaction() as conn:
            conn.execute(update(sources).where(sources.c.name.in_(list(names)))
                         .values(due_at=None))

    def due_by(self, due: Mapping[str, datetime]) -> None:
        """Bring each source's next poll forward to its time in ``due``, if later (a
        source whose interval a reload shortened); a later time changes nothing, and
        neither does a source due at once (``due_at`` NULL)."""
        with self._store.transaction() as conn:
            for name, due_at in due.items():
                conn.execute(update(sources).where(sources.c.name == name,
                                                   sources.c.due_at > due_at)
                             .values(due_at=due_at))

    def release(self, name: str, node_id: str, due_at: datetime) -> bool:
        """Give a polled source back, due again at ``due_at`` (or at the end of its
        backoff, if it is failing and that is later). False if the lease was lost."""
        return name in self.release_all(node_id, {name: due_at})

    def release_all(self, node_id: str, due: Mapping[str, datetime],
                    states: Sequence[SourceState] = ()) -> set[str]:
        """``release`` many sources in one transaction (``due``: each one's next due
        time), saving ``states`` first (polls that changed nothing but their source's
        state). Returns the names whose lease this node still held."""
        postgresql = not self._store.single_node
        with self._store.transaction() as conn:
            held = [str(name) for name in conn.execute(
                self._store.statement("held among", lambda: _held_among(postgresql)),
                {"names": as_parameter(list(due), postgresql), "node": node_id}).scalars()]
            self._store.write_states(conn, states)  # before: the backoff below reads them
            if held:
                conn.execute(_RELEASE, [{"source": name, "node": node_id, "due_at": due[name]}
                                        for name in held])
        return set(held)

    # --- job leases -----------------------------------------------------------------------

    def claim_job(self, name: str, node_id: str, now: datetime, lease: timedelta) -> bool:
        """Whether this node may run the job ``name`` now (no other node holds it)."""
        with self._store.transaction() as conn:
            won = conn.execute(
                self._store.insert(job_leases)
                .values(name=name, owner=node_id, until=now + lease)
                .on_conflict_do_update(index_elements=[job_leases.c.name],
                                       set_={"owner": node_id, "until": now + lease},
                                       where=or_(job_leases.c.until < now,
                                                 job_leases.c.owner == node_id))
                .returning(job_leases.c.name)
            ).all()
        return bool(won)

    def release_job(self, name: str, node_id: str) -> None:
        with self._store.transaction() as conn:
            conn.execute(delete(job_leases).where(job_leases.c.name == name,
                                                  job_leases.c.owner == node_id))

    def _among(self, names: Collection[str]) -> ColumnElement[bool]:
        return names_among(self._store.single_node, names)


def names_among(single_node: bool, names: Collection[str]) -> ColumnElement[bool]:
    """``name IN names``: one array parameter on PostgreSQL (thousands of sources)."""
    if single_node:
        return sources.c.name.in_(list(names))
    return sources.c.name == any_(bindparam("names", list(names), type_=ARRAY(String)))


def _held_among(postgresql: bool) -> Select[tuple[str]]:
    """Of the sources named ``names``, those the node ``node`` holds, locked in name
    order (built once: ``Store.statement``)."""
    return (select(sources.c.name)
            .where(among(sources.c.name, "names", postgresql),
                   sources.c.lease_owner == bindparam("node"))
            .order_by(sources.c.name).with_for_update())


_DUE_AT = bindparam("due_at", type_=sources.c.due_at.type)
# A source given back: due again at its time, or when its backoff ends if that is later.
_RELEASE = (
    update(sources)
    .where(sources.c.name == bindparam("source"), sources.c.lease_owner == bindparam("node"))
    .values(lease_owner=None, lease_until=None, last_node=bindparam("node"),
            due_at=case((and_(sources.c.consecutive_failures > 0,
                              sources.c.next_poll_at > _DUE_AT), sources.c.next_poll_at),
                        else_=_DUE_AT))
)


def _lock_in_order(conn: Connection, which: ColumnElement[bool]) -> list[str]:
    """Lock the ``sources`` rows ``which`` selects, in name order; their names."""
    return list(conn.execute(select(sources.c.name).where(which).order_by(sources.c.name)
                             .with_for_update()).scalars())
