"""Silences as rows (``store.silences``): shared by every node that uses the database.

``active`` is read inside the transaction that files alerts, so a silence added on
one node covers the alerts every node plans from then on. Removing a silence ends
it early and keeps the row: the alerts filed under it still name it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, or_, select, update

from monitor.errors import StoreError
from monitor.silence import Action, Silence, Target
from monitor.store.schema import outbox, silences

if TYPE_CHECKING:
    from monitor.store.store import Store


@dataclass(frozen=True, slots=True)
class SilencedCount:
    """Alerts filed under one silence, per outbox status (held, deferred, sent, silenced...)."""

    silence_id: int
    status: str
    count: int


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    rows = conn.execute(
        select(silences).where(silences.c.starts_at <= now, silences.c.ends_at > now,
                               or_(silences.c.removed_at.is_(None),
                                   silences.c.removed_at > now))
        .order_by(silences.c.id)
    ).mappings().all()
    return [_silence(r) for r in rows]


class Silences:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, target: Target, name: str, action: Action, reason: str, created_by: str,
            starts_at: datetime, ends_at: datetime) -> Silence:
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        with self._store.transaction() as conn:
            silence_id = conn.execute(
                silences.insert().values(target=target, name=name, action=action,
                                         reason=reason, created_by=created_by,
                                         starts_at=starts_at, ends_at=ends_at)
                .returning(silences.c.id)
            ).scalar_one()
        return Silence(int(silence_id), target, name, action, reason, created_by, starts_at,
                       ends_at)

    def active(self, now: datetime) -> list[Silence]:
        with self._store.transaction() as conn:
            return active_silences(conn, now)

    def ended_since(self, since: datetime, now: datetime) -> list[Silence]:
        """Silences that stopped between ``since`` and ``now`` (expired or removed)."""
        with self._store.transaction() as conn:
            rows = conn.execute(
                select(silences).where(or_(
                    and_(silences.c.ends_at > since, silences.c.ends_at <= now),
                    and_(silences.c.removed_at > since, silences.c.removed_at <= now),
                )).order_by(silences.c.id)
            ).mappings().all()
        return [_silence(r) for r in rows]

    def remove(self, silence_id: int, now: datetime) -> Silence:
        """End a silence now. Alerts waiting for its end (no digest) become due now."""
        with self._store.transaction() as conn:
            row = conn.execute(
                select(silences).where(silences.c.id == silence_id)
            ).mappings().first()
            if row is None:
                raise StoreError(f"there is no silence {silence_id} (see `newsmon silence list`)")
            silence = _silence(row)
            if not silence.active(now):
                raise StoreError(f"silence {silence_id} has already ended")
            conn.execute(update(silences).where(silences.c.id == silence_id)
                         .values(removed_at=now))
            conn.execute(update(outbox).where(outbox.c.silence_id == silence_id,
                                              outbox.c.status == "deferred",
                                              outbox.c.next_attempt_at > now)
                         .values(next_attempt_at=now))
        return replace(silence, removed_at=now)

    def counts(self, silence_ids: list[int]) -> list[SilencedCount]:
        """What became of the alerts filed under these silences."""
        if not silence_ids:
            return []
        with self._store.transaction() as conn:
            rows = conn.execute(
                select(outbox.c.silence_id, outbox.c.status, func.count())
                .where(outbox.c.silence_id.in_(silence_ids))
                .group_by(outbox.c.silence_id, outbox.c.status)
                .order_by(outbox.c.silence_id, outbox.c.status)
            ).all()
        return [SilencedCount(int(r[0]), str(r[1]), int(r[2])) for r in rows]


def _silence(row: Any) -> Silence:
    return Silence(id=int(row["id"]), target=row["target"], name=row["name"],
                   action=row["action"], reason=row["reason"], created_by=row["created_by"],
                   starts_at=row["starts_at"], ends_at=row["ends_at"],
                   removed_at=row["removed_at"])

