"""What the outbox holds, counted (``store.outbox_counts``): for ``newsmon status`` and
the ``newsmon_outbox_alerts`` metric. Reads only; the queue is ``monitor.store.outbox``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from monitor.store.outbox import OPEN_STATUSES
from monitor.store.schema import outbox

if TYPE_CHECKING:
    from monitor.store.store import Store

UNSENT_STATUSES = (*OPEN_STATUSES, "held", "failed", "silenced")


@dataclass(frozen=True, slots=True)
class OutboxCount:
    channel: str
    status: str
    count: int


class OutboxCounts:
    def __init__(self, store: Store) -> None:
        self._store = store

    def counts(self) -> list[OutboxCount]:
        with self._store.transaction() as conn:
            rows = conn.execute(
                select(outbox.c.channel, outbox.c.status, func.count())
                .group_by(outbox.c.channel, outbox.c.status)
                .order_by(outbox.c.channel, outbox.c.status)
            ).all()
        return [OutboxCount(r[0], r[1], int(r[2])) for r in rows]

    def unsent_counts(self) -> list[OutboxCount]:
        """Rows per channel and status, sent ones left out (an index read, not a scan)."""
        with self._store.transaction() as conn:
            rows = conn.execute(
                select(outbox.c.channel, outbox.c.status, func.count())
                .where(outbox.c.status.in_(UNSENT_STATUSES))
                .group_by(outbox.c.channel, outbox.c.status)
            ).all()
        return [OutboxCount(r[0], r[1], int(r[2])) for r in rows]

    def failed_rows(self, limit: int = 20) -> list[tuple[str, str, str | None]]:
        """The latest failed alerts: (channel, rule, last error)."""
        with self._store.transaction() as conn:
            rows = conn.execute(
                select(outbox.c.channel, outbox.c.rule_id, outbox.c.last_error)
                .where(outbox.c.status == "failed").order_by(outbox.c.id.desc()).limit(limit)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]
