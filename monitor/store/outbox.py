"""Stage *outbox*: alerts as rows, and the queue operations on them.

Alerts are filed in the transaction that stores their article (``file_alerts``).
The unique (rule, dedupe key, channel) constraint decides duplicates; when an
alert for the key exists already, the new one becomes a follow-up of it (per the
channel's ``follow_ups`` policy). A rule's dedupe window bounds that: an alert
planned longer than a window ago steps aside (its key becomes ``KEY#ID``, by a
conditional update only one transaction can win), so the story's next article
alerts anew and opens the next window. The constraint still decides, so neither a
restart nor a second node alerts twice for one (rule, key, channel) and window.

Delivery takes rows with ``claim_due``: a conditional UPDATE that succeeds for one
claimant only, with a lease, so several workers (or nodes) never send the same
row, and a crash mid-send means a resend after the lease, never a loss. Rows of a
channel are claimed in order: a row waiting for its retry holds back the rows
behind it. ``held`` rows wait for the channel's digest; ``deferred`` rows wait
for their throttle window (or their silence's end) and hold nothing back;
``silenced`` rows were dropped by a silence and are kept as a record. A silence
added after an alert was filed covers it too, when delivery reaches it
(``Outbox.silence``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, and_, cast, func, literal, or_, select, update

from monitor.records import Alert, Delivery
from monitor.silence import Silence, silencing
from monitor.store.schema import channel_state, outbox
from monitor.store.silences import active_silences

if TYPE_CHECKING:
    from monitor.plan import PlannedAlert
    from monitor.store.store import Store

Insert = Callable[[Any], Any]
OPEN_STATUSES = ("pending", "sending", "deferred")
UNSENT_STATUSES = (*OPEN_STATUSES, "held", "failed", "silenced")


@dataclass(frozen=True, slots=True)
class OutboxCount:
    channel: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class ChannelState:
    channel: str
    failing_since: datetime | None
    error: str | None
    fingerprint: str | None
    last_sent_at: datetime | None
    last_digest_at: datetime | None


def file_alerts(
    conn: Connection, insert: Insert, article_id: int | None,
    planned: Sequence[PlannedAlert],
    now: datetime,
    active: Sequence[Silence],
) -> int:
    """Write an article's alerts (or follow-ups) in the caller's transaction; count new rows.

    An alert one of the ``active`` silences covers is filed all the same, under the
    silence's id (``monitor.silence`` says what becomes of it).
    """
    created = 0
    for item in planned:
        alert = item.alert
        silence = silencing(active, alert, now)
        if silence is not None and silence.action == "drop":
            created += _record_dropped(conn, insert, article_id, item, silence, now)
            continue
        if item.window is not None:
            _retire_expired(conn, alert.rule_id, item.dedupe_key, alert.channel,
                            now - item.window)
        row = {
            "channel": alert.channel, "rule_id": alert.rule_id, "dedupe_key": item.dedupe_key,
            "article_id": article_id, "payload": json.dumps(alert.to_json()),
            "status": "held" if item.hold else "pending", "attempts": 0,
            "next_attempt_at": now, "created_at": now, "kind": "alert",
            "in_digest": item.in_digest,
        }
        if _insert_new(conn, insert, _held_by(row, silence)):
            created += 1
            continue
        if item.follow_ups == "none":
            continue
        parent = conn.execute(
            select(outbox.c.id).where(outbox.c.rule_id == alert.rule_id,
                                      outbox.c.dedupe_key == item.dedupe_key,
                                      outbox.c.channel == alert.channel)
        ).scalar_one_or_none()
        to_digest = item.follow_ups == "digest"
        follow_up = replace(alert, kind="follow_up")
        row.update(
            dedupe_key=f"f:{alert.article_identity}", kind="follow_up", parent_id=parent,
            payload=json.dumps(follow_up.to_json()),
            status="held" if to_digest or item.hold else "pending",
            in_digest=item.in_digest or to_digest,
        )
        created += _insert_new(conn, insert, _held_by(row, silence))
    return created


def _held_by(row: dict[str, Any], silence: Silence | None) -> dict[str, Any]:
    """A row planned under a ``digest`` silence: into the digest, or due when it ends."""
    if silence is None:
        return row
    held = {**row, "silence_id": silence.id, "last_error": f"silenced by {silence.describe()}"}
    if row["in_digest"] or row["status"] == "held":
        held.update(status="held", in_digest=True)
    else:
        held.update(status="deferred", next_attempt_at=silence.until)
    return held


def _record_dropped(conn: Connection, insert: Insert, article_id: int | None,
                    item: PlannedAlert, silence: Silence, now: datetime) -> int:
    """A row planned under a ``drop`` silence: kept as a record, never sent, and not
    holding the story's dedupe key (the story may alert after the silence)."""
    alert = item.alert
    key = f"silenced:{silence.id}:{item.dedupe_key}:{alert.article_identity}"[:200]
    return int(_insert_new(conn, insert, {
        "channel": alert.channel, "rule_id": alert.rule_id, "dedupe_key": key,
        "article_id": article_id, "payload": json.dumps(alert.to_json()),
        "status": "silenced", "attempts": 0, "next_attempt_at": now, "created_at": now,
        "kind": alert.kind, "in_digest": False, "silence_id": silence.id,
        "last_error": f"dropped by {silence.describe()}",
    }))


def _retire_expired(conn: Connection, rule_id: str, key: str, channel: str,
                    before: datetime) -> None:
    """The key's alert, if planned before ``before``, gives the key up (``KEY#ID``)."""
    conn.execute(
        update(outbox)
        .where(outbox.c.rule_id == rule_id, outbox.c.dedupe_key == key,
               outbox.c.channel == channel, outbox.c.kind == "alert",
               outbox.c.created_at < before)
        .values(dedupe_key=literal(f"{key}#") + cast(outbox.c.id, String))
    )


def _insert_new(conn: Connection, insert: Insert, row: dict[str, Any]) -> bool:
    statement = insert(outbox).values(**row).on_conflict_do_nothing().returning(outbox.c.id)
    return bool(conn.execute(statement).all())  # rowcount is -1 here on some drivers


class Outbox:
    def __init__(self, store: Store) -> None:
        self._store = store

    def claim_due(
        self, now: datetime, limit: int, lease: timedelta, skip_channels: Collection[str] = ()
    ) -> list[Delivery]:
        """Claim up to ``limit`` due rows per channel, in order within each channel.

        Each channel is read on its own, so a channel with a long backlog (down for
        hours) never starves the others.
        """
        due = or_(
            and_(outbox.c.status.in_(("pending", "deferred")), outbox.c.next_attempt_at <= now),
            and_(outbox.c.status == "sending", outbox.c.claimed_until < now),
        )
        parent = outbox.alias("parent")
        claimed: list[Delivery] = []
        with self._store.transaction() as conn:
            channels = conn.execute(
                select(outbox.c.channel).where(outbox.c.status.in_(OPEN_STATUSES)).distinct()
            ).scalars().all()
            for channel in sorted(set(channels) - set(skip_channels)):
                rows = conn.execute(
                    select(outbox.c.id, outbox.c.status, outbox.c.next_attempt_at,
                           outbox.c.claimed_until, outbox.c.payload, outbox.c.attempts,
                           outbox.c.created_at, parent.c.remote_id.label("thread"))
                    .outerjoin(parent, parent.c.id == outbox.c.parent_id)
                    .where(outbox.c.channel == channel, outbox.c.status.in_(OPEN_STATUSES))
                    .order_by(outbox.c.id)
                    .limit(limit)
                ).all()
                for row in rows:
                    is_due = (row.status in ("pending", "deferred")
                              and row.next_attempt_at <= now) or (
                        row.status == "sending" and row.claimed_until is not None
                        and row.claimed_until < now)
                    if not is_due:
                        if row.status == "deferred":  # throttled rows hold nothing back
                            continue
                        break  # keep the channel's order: nothing overtakes this row
                    won = conn.execute(
                        update(outbox).where(outbox.c.id == row.id, due)
                        .values(status="sending", claimed_until=now + lease,
                                attempts=outbox.c.attempts + 1)
                    ).rowcount
                    if won != 1:
                        break  # another worker has this channel's head
                    claimed.append(Delivery(int(row.id),
                                            Alert.from_json(json.loads(row.payload)),
                                            int(row.attempts) + 1, row.created_at, row.thread))
        return claimed

    def mark_sent(self, outbox_id: int, now: datetime, remote_id: str | None = None) -> None:
        with self._store.transaction() as conn:
            channel = conn.execute(
                update(outbox).where(outbox.c.id == outbox_id)
                .values(status="sent", sent_at=now, claimed_until=None, last_error=None,
                        remote_id=remote_id)
                .returning(outbox.c.channel)
            ).scalar_one()
            self._touch_channel(conn, channel, last_sent_at=now)

    def mark_retry(self, outbox_id: int, error: str, next_attempt: datetime) -> None:
        self._set(outbox_id, status="pending", next_attempt_at=next_attempt, claimed_until=None,
                  last_error=error)

    def defer(self, outbox_id: int, reason: str, until: datetime) -> None:
        """Throttled: due again at ``until``; the attempt does not count."""
        self._set(outbox_id, status="deferred", next_attempt_at=until, claimed_until=None,
                  last_error=reason, attempts=outbox.c.attempts - 1)

    def hold(self, outbox_id: int, reason: str) -> None:
        """Send this alert with the channel's next digest instead."""
        self._set(outbox_id, status="held", in_digest=True, claimed_until=None,
                  last_error=reason, attempts=outbox.c.attempts - 1)

    def release(self, outbox_ids: Collection[int]) -> None:
        """Give claimed rows back unsent (their channel stopped this round)."""
        if not outbox_ids:
            return
        with self._store.transaction() as conn:
            conn.execute(
                update(outbox).where(outbox.c.id.in_(list(outbox_ids)),
                                     outbox.c.status == "sending")
                .values(status="pending", claimed_until=None, attempts=outbox.c.attempts - 1)
            )

    def release_abandoned(self) -> int:
        """Single node: rows left ``sending`` by a previous run go back to the queue now.

        Their send was cut by a crash or kill; whether the channel received them is
        unknown, so they are sent again (at least once). On a shared database the
        lease decides instead: another node may be sending them right now.
        """
        with self._store.transaction() as conn:
            return int(conn.execute(
                update(outbox).where(outbox.c.status == "sending")
                .values(status="pending", claimed_until=None)
            ).rowcount)

    def active_silences(self, now: datetime) -> list[Silence]:
        with self._store.transaction() as conn:
            return active_silences(conn, now)

    def silence(self, outbox_id: int, silence: Silence, to_digest: bool, *,
                claimed: bool) -> bool:
        """A row that a silence added after it was filed now covers: one this worker
        has ``claimed`` for sending, or (``claimed`` False) one waiting (held, pending,
        deferred). False if the row is not so (sent, settled, or being sent by a
        delivery round meanwhile): it stays as it is.

        The same outcome as filing it under the silence: ``drop`` records it as
        ``silenced``, out of the digest, and gives up its dedupe key (the story may
        alert after the silence); ``digest`` holds it for the channel's digest, or
        until the silence ends on a channel without one. A claim's attempt does not
        count.
        """
        values: dict[str, Any] = {"silence_id": silence.id, "claimed_until": None}
        if claimed:  # the claim's attempt does not count
            values["attempts"] = outbox.c.attempts - 1
        if silence.action == "drop":
            values.update(status="silenced", in_digest=False,
                          last_error=f"dropped by {silence.describe()}",
                          dedupe_key=func.substr(
                              literal(f"silenced:{silence.id}:{outbox_id}:")
                              + outbox.c.dedupe_key, 1, 200))
        elif to_digest:
            values.update(status="held", in_digest=True,
                          last_error=f"silenced by {silence.describe()}")
        else:
            values.update(status="deferred", next_attempt_at=silence.until,
                          last_error=f"silenced by {silence.describe()}")
        with self._store.transaction() as conn:
            return bool(conn.execute(
                update(outbox).where(outbox.c.id == outbox_id, outbox.c.status.in_(
                    ("sending",) if claimed else ("pending", "deferred", "held")))
                .values(**values)
            ).rowcount)

    def mark_failed(self, outbox_id: int, error: str) -> None:
        self._set(outbox_id, status="failed", claimed_until=None, last_error=error)

    def _set(self, outbox_id: int, **values: Any) -> None:
        with self._store.transaction() as conn:
            conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(**values))

    # --- throttling and digests ----------------------------------------------------------

    def sent_since(self, channel: str, since: datetime,
                   rule_id: str | None = None) -> tuple[int, datetime | None]:
        """Messages sent to ``channel`` (for ``rule_id``) since ``since``: count and first time.

        Alerts that went out only inside a digest (sent when digested) do not count.
        """
        sent_alone = or_(outbox.c.digested_at.is_(None), outbox.c.sent_at < outbox.c.digested_at)
        condition = and_(outbox.c.channel == channel, outbox.c.status == "sent", sent_alone,
                         outbox.c.sent_at >= since)
        if rule_id is not None:
            condition = and_(condition, outbox.c.rule_id == rule_id)
        with self._store.transaction() as conn:
            count, first = conn.execute(
                select(func.count(), func.min(outbox.c.sent_at)).where(condition)
            ).one()
        return int(count), first

    def digest_rows(self, channel: str, until: datetime) -> list[tuple[int, Alert]]:
        with self._store.transaction() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.payload)
                .where(outbox.c.channel == channel, outbox.c.in_digest.is_(True),
                       outbox.c.digested_at.is_(None), outbox.c.status != "failed",
                       outbox.c.created_at <= until)
                .order_by(outbox.c.id)
            ).all()
        return [(int(r.id), Alert.from_json(json.loads(r.payload))) for r in rows]

    def oldest_digest_item(self, channel: str) -> datetime | None:
        with self._store.transaction() as conn:
            oldest: datetime | None = conn.execute(
                select(func.min(outbox.c.created_at))
                .where(outbox.c.channel == channel, outbox.c.in_digest.is_(True),
                       outbox.c.digested_at.is_(None), outbox.c.status != "failed")
            ).scalar_one()
        return oldest

    def mark_digested(self, channel: str, outbox_ids: Collection[int], now: datetime) -> None:
        with self._store.transaction() as conn:
            ids = list(outbox_ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(update(outbox).where(outbox.c.id.in_(chunk))
                             .values(digested_at=now))
                conn.execute(update(outbox).where(outbox.c.id.in_(chunk),
                                                  outbox.c.status == "held")
                             .values(status="sent", sent_at=now, last_error=None))
            self._touch_channel(conn, channel, last_digest_at=now)

    # --- channel state -------------------------------------------------------------------

    def channel_states(self) -> dict[str, ChannelState]:
        with self._store.transaction() as conn:
            rows = conn.execute(select(channel_state)).mappings().all()
        return {r["channel"]: ChannelState(**dict(r)) for r in rows}

    def set_failing(self, channel: str, error: str, fingerprint: str, now: datetime) -> None:
        with self._store.transaction() as conn:
            self._touch_channel(conn, channel, failing_since=now, error=error,
                                fingerprint=fingerprint)

    def clear_failing(self, channel: str) -> None:
        with self._store.transaction() as conn:
            self._touch_channel(conn, channel, failing_since=None, error=None, fingerprint=None)

    def _touch_channel(self, conn: Connection, channel: str, **values: Any) -> None:
        statement = self._store.insert(channel_state).values(channel=channel, **values)
        conn.execute(statement.on_conflict_do_update(index_elements=[channel_state.c.channel],
                                                     set_=values))

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

