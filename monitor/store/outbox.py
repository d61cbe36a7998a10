"""Stage *outbox*: alerts as rows, and the queue operations on them.

Alerts are filed in the transaction that stores their article
(``monitor.store.filing``).

Delivery takes rows with ``claim_due``: a conditional UPDATE that succeeds for one
claimant only, with a lease, so several workers (or nodes) never send the same
row, and a crash mid-send means a resend after the lease, never a loss. A claimant
renews its leases while it sends (``renew``). The outcome of a send is recorded
only under the claim that made it (``_held``), so a claimant whose lease ran out
can never undo what the row's next claimant did; the one exception is a send that
went out: it is recorded whoever holds the row, and the first one recorded stands.

Rows of a channel are claimed in order: a row waiting for its retry holds back the
rows behind it, and a follow-up waits for the alert it follows
(``monitor.store.follow_ups``). ``held`` rows wait for the channel's digest (on a
channel that has none any more they go back to the queue: ``release_held``);
``deferred`` rows wait for their throttle window (or their silence's end) and hold
nothing back; ``silenced`` rows were dropped by a silence and are kept as a record.
A silence added after an alert was filed covers it too, when delivery or the
digest reaches it (``silence_claimed``, ``silence_waiting``).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, Select, and_, func, literal, or_, select, update
from sqlalchemy.sql import ColumnElement, FromClause

from monitor.records import Alert, Delivery
from monitor.silence import Silence
from monitor.store.channel_health import touch_channel
from monitor.store.follow_ups import Parent, followed, retired_key
from monitor.store.schema import outbox
from monitor.store.silences import active_silences

if TYPE_CHECKING:
    from monitor.store.store import Store

OPEN_STATUSES = ("pending", "sending", "deferred")


class Outbox:
    def __init__(self, store: Store) -> None:
        self._store = store

    def claim_due(
        self, now: datetime, limit: int, lease: timedelta, skip_channels: Collection[str] = ()
    ) -> list[Delivery]:
        """Claim up to ``limit`` due rows per channel, in order within each channel.

        Each channel is read on its own, so a channel with a long backlog (down for
        hours) never starves the others. A follow-up is claimed once the alert it
        follows was sent (``monitor.store.follow_ups``); one behind an alert claimed in
        this same call waits for the next call, which knows the alert's thread.
        """
        parent = outbox.alias("parent")
        claimed: list[Delivery] = []
        with self._store.transaction() as conn:
            channels = conn.execute(
                select(outbox.c.channel).where(outbox.c.status.in_(OPEN_STATUSES)).distinct()
            ).scalars().all()
            for channel in sorted(set(channels) - set(skip_channels)):
                # Rows that hold nothing back are left out here, not skipped below: however
                # many wait, they must not fill the ``limit`` and starve the rows behind them.
                rows = conn.execute(
                    _with_parent(select(outbox.c.id, outbox.c.status, outbox.c.next_attempt_at,
                                        outbox.c.claimed_until, outbox.c.payload,
                                        outbox.c.created_at), parent)
                    .where(outbox.c.channel == channel, outbox.c.status.in_(OPEN_STATUSES),
                           _not_waiting(now, parent))
                    .order_by(outbox.c.id)
                    .limit(limit)
                ).all()
                claimed_here: set[int] = set()
                for row in rows:
                    is_due = (row.status in ("pending", "deferred")
                              and row.next_attempt_at <= now) or (
                        row.status == "sending" and row.claimed_until is not None
                        and row.claimed_until < now)
                    if not is_due:
                        if row.status == "deferred":  # throttled rows hold nothing back
                            continue
                        break  # keep the channel's order: nothing overtakes this row
                    alert, follows = _following(conn, row)
                    if follows is not None and follows.id in claimed_here:
                        break  # its alert goes first; it goes in the next claim, threaded
                    if follows is not None and not follows.sent:
                        continue  # it waits with its alert (throttled, held, silenced)
                    attempt = conn.execute(
                        update(outbox).where(outbox.c.id == row.id, _due(now))
                        .values(status="sending", claimed_until=now + lease,
                                attempts=outbox.c.attempts + 1)
                        .returning(outbox.c.attempts)
                    ).scalar_one_or_none()
                    if attempt is None:
                        break  # another worker has this channel's head
                    claimed_here.add(int(row.id))
                    claimed.append(Delivery(int(row.id), alert, int(attempt), row.created_at,
                                            follows.remote_id if follows else None))
        return claimed

    def renew(self, claims: Collection[Delivery], now: datetime, lease: timedelta) -> int:
        """Extend the lease of each of ``claims`` still held, from ``now``; how many were.

        A send under way that outlasts its lease must not be taken over and sent again.
        """
        with self._store.transaction() as conn:
            return sum(conn.execute(update(outbox).where(_held(claim))
                                    .values(claimed_until=now + lease)).rowcount
                       for claim in claims)

    def mark_sent(self, outbox_id: int, now: datetime, remote_id: str | None = None) -> bool:
        """Record a send, whoever holds the row now (the message went out); False if it was
        recorded already. The first send recorded stands, with its remote id (the thread
        its follow-ups reply in): a claimant whose lease expired mid-send and the one that
        took the row over may both send it, and the second changes nothing.
        """
        with self._store.transaction() as conn:
            channel = conn.execute(
                update(outbox).where(outbox.c.id == outbox_id, outbox.c.status != "sent")
                .values(status="sent", sent_at=now, claimed_until=None, last_error=None,
                        remote_id=remote_id)
                .returning(outbox.c.channel)
            ).scalar_one_or_none()
            if channel is None:
                return False
            touch_channel(self._store, conn, channel, last_sent_at=now)
        return True

    # Every other outcome of a send applies to a row only while ``claim`` still holds it:
    # a claimant whose lease expired, and whose row was taken over (or sent) meanwhile,
    # changes nothing. Each returns whether it applied.

    def mark_retry(self, claim: Delivery, error: str, next_attempt: datetime) -> bool:
        return self._settle(claim, status="pending", next_attempt_at=next_attempt,
                            last_error=error)

    def defer(self, claim: Delivery, reason: str, until: datetime) -> bool:
        """Throttled: due again at ``until``; the attempt does not count."""
        return self._settle(claim, status="deferred", next_attempt_at=until, last_error=reason,
                            attempts=outbox.c.attempts - 1)

    def hold(self, claim: Delivery, reason: str) -> bool:
        """Send this alert with the channel's next digest instead."""
        return self._settle(claim, status="held", in_digest=True, last_error=reason,
                            attempts=outbox.c.attempts - 1)

    def mark_failed(self, claim: Delivery, error: str) -> bool:
        """Given up: never sent. It gives up its story's key too, so the story's next
        article alerts anew, and its waiting follow-ups stand in for it."""
        return self._settle(claim, status="failed", last_error=error,
                            dedupe_key=retired_key(outbox.c.dedupe_key, outbox.c.id))

    def release(self, claims: Collection[Delivery]) -> None:
        """Give claimed rows back unsent (their channel stopped this round)."""
        with self._store.transaction() as conn:
            for claim in claims:
                conn.execute(update(outbox).where(_held(claim))
                             .values(status="pending", claimed_until=None,
                                     attempts=outbox.c.attempts - 1))

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

    def release_held(self, digest_channels: Collection[str], now: datetime) -> int:
        """Rows held for a digest their channel no longer has (a reload took the digest
        away, or the channel) go back to the queue, due now: sent on their own, as if
        filed without a digest; how many. Once there, they are what the channel's other
        rows are: a removed channel's are retried, then recorded failed."""
        with self._store.transaction() as conn:
            return int(conn.execute(
                update(outbox).where(outbox.c.status == "held",
                                     outbox.c.channel.not_in(list(digest_channels)))
                .values(status="pending", in_digest=False, next_attempt_at=now,
                        last_error="held for a digest its channel no longer has")
            ).rowcount)

    def active_silences(self, now: datetime) -> list[Silence]:
        with self._store.transaction() as conn:
            return active_silences(conn, now)

    def silence_claimed(self, claim: Delivery, silence: Silence, to_digest: bool) -> bool:
        """A silence added after the row was filed covers it, now that ``claim`` holds it
        for sending: the same outcome as filing it under the silence (``_silenced``). The
        claim's attempt does not count. False if the claim was lost meanwhile."""
        values = _silenced(claim.outbox_id, silence, to_digest)
        return self._settle(claim, **values, attempts=outbox.c.attempts - 1)

    def silence_waiting(self, outbox_id: int, silence: Silence, to_digest: bool) -> bool:
        """The same for a row waiting (held, pending, deferred). False if it is not (sent,
        settled, or being sent by a delivery round meanwhile): it stays as it is."""
        with self._store.transaction() as conn:
            return bool(conn.execute(
                update(outbox).where(outbox.c.id == outbox_id,
                                     outbox.c.status.in_(("pending", "deferred", "held")))
                .values(**_silenced(outbox_id, silence, to_digest))
            ).rowcount)

    def _settle(self, claim: Delivery, **values: Any) -> bool:
        with self._store.transaction() as conn:
            return bool(conn.execute(update(outbox).where(_held(claim))
                                     .values(claimed_until=None, **values)).rowcount)

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
        """The alerts ``channel``'s digest lists now, in order.

        A follow-up is listed once the alert it follows is out: sent, listed in an
        earlier digest, or listed before it in this one; else it waits for a later
        digest. One whose alert will never be sent stands in for it (its row rewritten:
        ``monitor.store.follow_ups``), or follows the story's new alert: filed after it,
        so listed after it here, the follow-up right behind it.
        """
        parent = outbox.alias("parent")
        listed: dict[int, Alert] = {}
        behind: dict[int, list[tuple[int, Alert]]] = {}  # alert id -> follow-ups waiting
        with self._store.transaction() as conn:
            rows = conn.execute(
                _with_parent(select(outbox.c.id, outbox.c.payload), parent)
                .where(outbox.c.channel == channel, outbox.c.in_digest.is_(True),
                       outbox.c.digested_at.is_(None), outbox.c.status != "failed",
                       outbox.c.created_at <= until)
                .order_by(outbox.c.id)
            ).all()
            for row in rows:
                alert, follows = _following(conn, row)
                if follows is None or follows.sent or follows.digested or follows.id in listed:
                    _list(listed, behind, int(row.id), alert)
                elif follows.id > row.id:  # re-pointed at an alert read after it
                    behind.setdefault(follows.id, []).append((int(row.id), alert))
        return list(listed.items())

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
            touch_channel(self._store, conn, channel, last_digest_at=now)


def _list(listed: dict[int, Alert], behind: dict[int, list[tuple[int, Alert]]],
          row_id: int, alert: Alert) -> None:
    """List a digest's row, then the follow-ups that were waiting for it to be listed."""
    queue = [(row_id, alert)]
    while queue:
        listing, listing_alert = queue.pop(0)
        listed[listing] = listing_alert
        queue[:0] = behind.pop(listing, [])


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(outbox.c.status.in_(("pending", "deferred")), outbox.c.next_attempt_at <= now),
        and_(outbox.c.status == "sending", outbox.c.claimed_until < now),
    )


def _not_waiting(now: datetime, parent: FromClause) -> ColumnElement[bool]:
    """Not a row that waits without holding its channel back, and that the claim could
    only skip: a throttled (``deferred``) row not due yet, or a follow-up whose alert is
    still to be sent and is not among the rows read before it (held for the digest,
    deferred and not due, or filed after it: a follow-up made to follow the story's new
    alert). Read with ``_with_parent``. A follow-up whose alert is read before it stays:
    the claim stops there, and it goes in the next claim, threaded."""
    parent_first = and_(parent.c.id < outbox.c.id, or_(
        parent.c.status.in_(("pending", "sending")),
        and_(parent.c.status == "deferred", parent.c.next_attempt_at <= now)))
    return and_(
        or_(outbox.c.status != "deferred", outbox.c.next_attempt_at <= now),
        or_(outbox.c.kind != "follow_up", parent.c.status.is_(None),
            parent.c.status.not_in(("pending", "sending", "deferred", "held")), parent_first),
    )


def _held(claim: Delivery) -> ColumnElement[bool]:
    """The row is still being sent under ``claim``, not claimed again since its lease ran
    out. Each claim counts one more attempt, and only the claim holding a row gives its
    attempt back (a throttle, a silence, a release), so the count names the claim: a row
    claimed again is never being sent with an earlier claim's count."""
    return and_(outbox.c.id == claim.outbox_id, outbox.c.status == "sending",
                outbox.c.attempts == claim.attempts)


def _silenced(outbox_id: int, silence: Silence, to_digest: bool) -> dict[str, Any]:
    """A row a silence added after it was filed now covers: the same outcome as filing it
    under the silence. ``drop`` records it as ``silenced``, out of the digest, and gives
    up its story's key (the story may alert after the silence; its waiting follow-ups
    stand in for it); ``digest`` holds it for the channel's digest, or until the silence
    ends on a channel without one."""
    values: dict[str, Any] = {"silence_id": silence.id}
    if silence.action == "drop":
        values.update(status="silenced", in_digest=False,
                      last_error=f"dropped by {silence.describe()}",
                      dedupe_key=func.substr(literal(f"silenced:{silence.id}:{outbox_id}:")
                                             + outbox.c.dedupe_key, 1, 200))
    elif to_digest:
        values.update(status="held", in_digest=True,
                      last_error=f"silenced by {silence.describe()}")
    else:
        values.update(status="deferred", next_attempt_at=silence.until,
                      last_error=f"silenced by {silence.describe()}")
    return values


def _with_parent(query: Select[Any], parent: FromClause) -> Select[Any]:
    """``query`` with each row's kind and the state of the alert it follows, if any."""
    return (query.add_columns(outbox.c.kind, outbox.c.parent_id,
                              parent.c.status.label("parent_status"),
                              parent.c.remote_id.label("parent_remote_id"),
                              parent.c.digested_at.label("parent_digested_at"))
            .outerjoin(parent, parent.c.id == outbox.c.parent_id))


def _following(conn: Connection, row: Row[Any]) -> tuple[Alert, Parent | None]:
    """A row read with ``_with_parent``: its alert as it goes out now, and the alert it
    follows (``None``: it is an alert, or stands in for one)."""
    alert = Alert.from_json(json.loads(row.payload))
    if row.kind != "follow_up" or row.parent_id is None:
        return alert, None
    return followed(conn, int(row.id), alert,
                    Parent(int(row.parent_id), row.parent_status, row.parent_remote_id,
                           row.parent_digested_at is not None))
