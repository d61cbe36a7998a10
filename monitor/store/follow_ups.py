"""Stage *outbox*, follow-ups: what a follow-up is when a delivery or a digest reaches it.

A follow-up is filed pointing at its story's alert (``parent_id``). What became of
that alert decides:

- sent (on its own, or in a digest): the follow-up goes out after it, a reply in its
  thread when the channel gave the alert an id (a Slack ``ts``, an email Message-ID);
- not sent yet (retrying, being sent, throttled, held for the digest, waiting for a
  silence's end): the follow-up waits for it, and never overtakes it;
- never to be sent (dropped by a silence, or failed): such an alert gave up its story's
  key. If another article of the story has alerted since, the follow-up follows that
  alert instead; else it stands in for the alert: it takes the story's key and becomes
  the story's alert, rendered as one, so a reader never meets a story as a follow-up
  of a message they never got. The story's later follow-ups follow it.

Decides what a follow-up follows, rewriting its row when its alert will never be
sent; claiming, order and sending are ``monitor.store.outbox``'s and the deliverer's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from sqlalchemy import Connection, String, case, cast, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from monitor.records import Alert
from monitor.store.schema import outbox

NEVER_SENT = ("silenced", "failed")  # rows that will not be sent on their own


@dataclass(frozen=True, slots=True)
class Parent:
    """The alert a follow-up follows, as its row is now."""

    id: int
    status: str | None  # None: its row is gone
    remote_id: str | None  # the channel's id of its message: the thread to reply in
    digested: bool  # listed in a digest already

    @property
    def sent(self) -> bool:
        return self.status in ("sent", None)


def followed(conn: Connection, follow_up_id: int, alert: Alert,
             parent: Parent) -> tuple[Alert, Parent | None]:
    """The follow-up's alert as it is to go out now, and the alert it follows; ``None``
    when it stands in for its story's alert (and is returned as an alert).

    Its row is rewritten when its parent will never be sent: pointed at the alert that
    holds the story now, or made the story's alert.
    """
    if parent.status not in NEVER_SENT:
        return alert, parent
    # Locked, so that two nodes reaching two follow-ups of one alert agree on one stand-in.
    gone = conn.execute(
        select(outbox.c.rule_id, outbox.c.channel, outbox.c.dedupe_key, outbox.c.silence_id)
        .where(outbox.c.id == parent.id).with_for_update()
    ).one()
    key = given_up_key(gone.dedupe_key, parent.id, gone.silence_id)
    holder = conn.execute(
        select(outbox.c.id, outbox.c.status, outbox.c.remote_id, outbox.c.digested_at)
        .where(outbox.c.rule_id == gone.rule_id, outbox.c.dedupe_key == key,
               outbox.c.channel == gone.channel)
    ).first()
    if holder is not None and holder.status not in NEVER_SENT:
        conn.execute(update(outbox).where(outbox.c.id == follow_up_id)
                     .values(parent_id=holder.id))
        return alert, Parent(int(holder.id), holder.status, holder.remote_id,
                             holder.digested_at is not None)
    if holder is not None:  # failed before failed alerts gave their key up: it does now
        conn.execute(update(outbox).where(outbox.c.id == holder.id)
                     .values(dedupe_key=retired_key(outbox.c.dedupe_key, outbox.c.id)))
    stand_in = replace(alert, kind="alert")
    if not _take_story(conn, follow_up_id, key, stand_in):
        return followed(conn, follow_up_id, alert, parent)  # it follows that new alert now
    return stand_in, None


def _take_story(conn: Connection, follow_up_id: int, key: str, stand_in: Alert) -> bool:
    """Make the follow-up the story's alert, holding ``key``; False if another node filed a
    new alert for the story meanwhile (the key is taken: nothing changed)."""
    taking = update(outbox).where(outbox.c.id == follow_up_id).values(
        kind="alert", dedupe_key=key, payload=json.dumps(stand_in.to_json()))
    if conn.dialect.name != "postgresql":  # one writer at a time: no other node to race
        conn.execute(taking)
        return True
    try:
        with conn.begin_nested():  # a savepoint: the claim's transaction goes on after a loss
            conn.execute(taking)
    except IntegrityError:
        return False
    return True


def given_up_key(key: str, row_id: int, silence_id: int | None) -> str:
    """The story key a row held before it gave it up: a row dropped by a silence holds
    ``silenced:SILENCE:ID:KEY``; one that failed or outlived its window, ``KEY#ID``."""
    if silence_id is not None:
        key = key.removeprefix(f"silenced:{silence_id}:{row_id}:")
    return key.removesuffix(f"#{row_id}")


def retired_key(key: ColumnElement[str], row_id: ColumnElement[int]) -> ColumnElement[str]:
    """``KEY#ID``: the key a row gives up its story with (the story may alert anew).

    A row gives it up once: one that outlived its dedupe window (``KEY#ID`` already) and
    fails later keeps ``KEY#ID``, so ``given_up_key`` still finds the story's key.
    """
    suffix = literal("#") + cast(row_id, String)
    return case((key.endswith(suffix), key), else_=key + suffix)
