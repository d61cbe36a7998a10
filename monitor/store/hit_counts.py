"""Hits counted per rule and day (for ``newsmon stats``): aggregated by the database.

The day is the UTC calendar day a hit was recorded. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, String, func, select

from monitor.store.schema import hits

if TYPE_CHECKING:
    from monitor.store.store import Store


@dataclass(frozen=True, slots=True)
class DayCount:
    rule_id: str
    day: date
    count: int


def hits_per_day(store: Store, since: datetime) -> list[DayCount]:
    day = _utc_day(store)
    with store.transaction() as conn:
        rows = conn.execute(
            select(hits.c.rule_id, day, func.count())
            .where(hits.c.created_at >= since)
            .group_by(hits.c.rule_id, day)
        ).all()
    return [DayCount(str(r[0]), date.fromisoformat(str(r[1])), int(r[2])) for r in rows]


def last_hits(store: Store) -> dict[str, datetime]:
    """Each rule's latest hit ever (the ``(rule_id, created_at)`` index answers it)."""
    with store.transaction() as conn:
        rows = conn.execute(
            select(hits.c.rule_id, func.max(hits.c.created_at)).group_by(hits.c.rule_id)
        ).all()
    return {str(r[0]): r[1] for r in rows}


def _utc_day(store: Store) -> ColumnElement[str]:
    if store.single_node:  # SQLite keeps UTC times as text: its date() reads them
        return func.date(hits.c.created_at, type_=String)
    return func.to_char(func.timezone("UTC", hits.c.created_at), "YYYY-MM-DD", type_=String)
