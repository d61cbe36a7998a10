"""Channels as rows (``store.channel_health``): parked as failing, last sent, last digest.

A channel that failed permanently (bad credentials, a deleted webhook) is parked
here with the fingerprint of the settings it failed with: delivery skips it until
its settings change or ``newsmon channels test`` clears it. The outbox records each
send and digest here too (``touch_channel``, in the transaction that records it), for
``newsmon status`` and for the digest schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from monitor.store.schema import channel_state

if TYPE_CHECKING:
    from monitor.store.store import Store


@dataclass(frozen=True, slots=True)
class ChannelState:
    channel: str
    failing_since: datetime | None
    error: str | None
    fingerprint: str | None
    last_sent_at: datetime | None
    last_digest_at: datetime | None


class ChannelHealth:
    def __init__(self, store: Store) -> None:
        self._store = store

    def channel_states(self) -> dict[str, ChannelState]:
        with self._store.transaction() as conn:
            rows = conn.execute(select(channel_state)).mappings().all()
        return {r["channel"]: ChannelState(**dict(r)) for r in rows}

    def set_failing(self, channel: str, error: str, fingerprint: str, now: datetime) -> None:
        with self._store.transaction() as conn:
            touch_channel(self._store, conn, channel, failing_since=now, error=error,
                          fingerprint=fingerprint)

    def clear_failing(self, channel: str) -> None:
        with self._store.transaction() as conn:
            touch_channel(self._store, conn, channel, failing_since=None, error=None,
                          fingerprint=None)


def touch_channel(store: Store, conn: Connection, channel: str, **values: Any) -> None:
    """Set ``values`` on ``channel``'s row, in the caller's transaction (made if missing)."""
    statement = store.insert(channel_state).values(channel=channel, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=[channel_state.c.channel],
                                                 set_=values))
