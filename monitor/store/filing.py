"""Stage *outbox*, filing: an article's alerts become rows, in the transaction that stores it.

The unique (rule, dedupe key, channel) constraint decides duplicates; when an
alert for the key exists already, the new one becomes a follow-up of it (per the
channel's ``follow_ups`` policy). A rule's dedupe window bounds that: an alert
planned longer than a window ago steps aside (its key becomes ``KEY#ID``, by a
conditional update only one transaction can win), so the story's next article
alerts anew and opens the next window. The constraint still decides, so neither a
restart nor a second node alerts twice for one (rule, key, channel) and window.

An alert a silence covers is filed all the same: under a ``drop`` silence as a
``silenced`` record holding no story key, under a ``digest`` silence held for the
digest or deferred to the silence's end.

Files rows only: sending them is ``monitor.store.outbox``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from monitor.silence import Silence, silencing
from monitor.store.follow_ups import retired_key
from monitor.store.schema import outbox

if TYPE_CHECKING:
    from monitor.plan import PlannedAlert

Insert = Callable[[Any], Any]


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
        filed, parent = _file_alert(conn, insert, _held_by(row, silence),
                                    follows=item.follow_ups != "none")
        if filed:
            created += 1
            continue
        if item.follow_ups == "none":
            continue
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


def _file_alert(conn: Connection, insert: Insert, row: dict[str, Any], *,
                follows: bool) -> tuple[bool, int | None]:
    """File ``row`` as its story's alert: whether it was, else (``follows``) the id of the
    alert that holds the story's key.

    On PostgreSQL that alert may give the key up (fail, be dropped by a silence) on
    another node between the refused insert and the look-up: the key is free then, and
    the row is the story's alert after all, not a follow-up of nothing.
    """
    holder: int | None = None
    for _attempt in range(3):
        if _insert_new(conn, insert, row):
            return True, None
        if not follows:
            break
        holder = conn.execute(
            select(outbox.c.id).where(outbox.c.rule_id == row["rule_id"],
                                      outbox.c.dedupe_key == row["dedupe_key"],
                                      outbox.c.channel == row["channel"])
        ).scalar_one_or_none()
        if holder is not None:
            break
    return False, holder


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
        .values(dedupe_key=retired_key(outbox.c.dedupe_key, outbox.c.id))
    )


def _insert_new(conn: Connection, insert: Insert, row: dict[str, Any]) -> bool:
    statement = insert(outbox).values(**row).on_conflict_do_nothing().returning(outbox.c.id)
    return bool(conn.execute(statement).all())  # rowcount is -1 here on some drivers
