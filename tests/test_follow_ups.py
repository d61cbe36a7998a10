"""Follow-ups: sent after the alert they follow, in its thread; standing in for one never sent.

The reader's first sight of a story is a full alert: a follow-up never overtakes the
alert it follows, and one whose alert will never be sent (dropped by a silence,
failed) is sent as the story's alert instead, with the story's later follow-ups in
its thread. Against a real Slack Web API and a real SMTP server where the thread is
the point, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from monitor.channel_settings import EmailChannelSettings
from monitor.channels.email import EmailChannel
from monitor.config import DeliverySettings
from monitor.deliver import Deliverer
from monitor.errors import ChannelError, ChannelFailure
from monitor.plan import PlannedAlert
from monitor.records import Alert, Article
from monitor.store import NewArticle, SourceState, Store
from monitor.store.schema import outbox
from tests.slack_server import SlackServer
from tests.slack_server import slack_server_fixture as slack_server_fixture
from tests.smtp_server import MailServerFactory
from tests.smtp_server import mail_server as mail_server
from tests.test_channel_slack import api_channel
from tests.test_deliver import START, Clock, Recorder, deliverer, direct, file, make_alert
from tests.test_deliver import store as store


def publish(store: Store, clock: Clock, numbers: tuple[int, ...], *channels: str,
            source: str = "wire", story: str = "st", in_digest: bool = False,
            hold: bool = False, window: timedelta | None = None) -> None:
    """Articles ``numbers`` of ``story`` from ``source``, in one poll, alerting ``channels``
    (listed in their digest, or only there: ``in_digest``, ``hold``; the rule's dedupe
    ``window``)."""
    batch = []
    for n in numbers:
        alerts = [replace(make_alert(n, channel=name, story=story), source=source)
                  for name in channels]
        article = Article(source=source, identity=f"a{n}", guid=f"a{n}", url=None,
                          title=alerts[0].article_title, summary="", content="", author="",
                          published=START, fetched=clock.now, language=None)
        planned = tuple(PlannedAlert(a, story, "thread", in_digest, hold, window)
                        for a in alerts)
        batch.append(NewArticle(article, story, (), planned))
    store.save_batch(SourceState(source, "u"), batch, clock.now)


def sent(recorder: Recorder) -> list[tuple[str, str, str | None]]:
    return [(a.kind, a.article_title, thread) for a, thread in recorder.sent]


def remote_id(store: Store, title: str, channel: str) -> str:
    """The channel's id of the message that sent article ``title``'s alert."""
    with store.transaction() as conn:
        rows = conn.execute(sa.select(outbox.c.payload, outbox.c.remote_id)
                            .where(outbox.c.channel == channel)).all()
    (found,) = [r.remote_id for r in rows if f'"article_title": "{title}"' in r.payload]
    return str(found)


def test_a_follow_up_filed_with_its_alert_replies_in_its_slack_and_email_threads(
    store: Store, slack_server: SlackServer, mail_server: MailServerFactory,
) -> None:
    """Two articles of a story in one poll: one round sends both, the follow-up second,
    knowing the alert's Slack ts and Message-ID."""
    clock = Clock()
    mail = mail_server()
    email = EmailChannel("mail", EmailChannelSettings(
        type="email", host="127.0.0.1", port=mail.port, security="none",
        sender="newsmon@example.org", to=["desk@example.org"]))
    publish(store, clock, (1, 2), "slack", "mail")
    d = Deliverer(store.outbox, store.channel_health, direct,
                  {"slack": api_channel(slack_server), "mail": email}, {}, {}, DeliverySettings(),
                  clock)
    assert asyncio.run(d.deliver_due()).sent == 4
    first, second = slack_server.posts
    assert "thread_ts" not in first.body
    assert second.body["thread_ts"] == remote_id(store, "headline 1", "slack")
    alert_mail, follow_up_mail = (r.message for r in mail.received)
    assert follow_up_mail["In-Reply-To"] == alert_mail["Message-ID"]
    assert str(follow_up_mail["Subject"]).startswith("Re: ")


def test_a_follow_up_waits_while_its_alert_waits_for_a_silence_to_end(store: Store) -> None:
    clock = Clock()
    desk = Recorder("desk")
    store.silences.add("source", "wire", "digest", "", "me", clock.now,
                       clock.now + timedelta(hours=1))
    publish(store, clock, (1,), "desk")  # deferred until the silence ends
    publish(store, clock, (2,), "desk", source="observer")  # not silenced: a follow-up
    publish(store, clock, (3,), "desk", source="observer", story="other")
    d = deliverer(store, clock, {"desk": desk})
    asyncio.run(d.deliver_due())
    assert sent(desk) == [("alert", "headline 3", None)]  # the waiting one holds nothing back
    clock.now += timedelta(minutes=61)
    asyncio.run(d.deliver_due())
    assert sent(desk)[1:] == [("alert", "headline 1", None),
                              ("follow_up", "headline 2", "ts-2")]


def test_a_follow_up_of_an_alert_held_for_the_digest_goes_out_after_the_digest(
    store: Store,
) -> None:
    clock = Clock()
    desk = Recorder("desk")
    store.silences.add("source", "wire", "digest", "", "me", clock.now,
                       clock.now + timedelta(hours=8))
    publish(store, clock, (1,), "desk", in_digest=True)  # held for the channel's digest
    publish(store, clock, (2,), "desk", source="observer", in_digest=True)
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *"})
    asyncio.run(d.deliver_due())
    assert desk.sent == []
    assert asyncio.run(d.send_digest("desk")) == 2
    assert [(a.kind, a.article_title) for a in desk.digests[0].alerts] == [
        ("alert", "headline 1"), ("follow_up", "headline 2")]
    asyncio.run(d.deliver_due())
    assert sent(desk) == [("follow_up", "headline 2", None)]  # a digest has no thread


def test_a_follow_up_of_an_alert_a_silence_dropped_is_emailed_as_the_storys_alert(
    store: Store, mail_server: MailServerFactory,
) -> None:
    """The alert (from a source silenced after it was filed) is dropped; the other
    outlet's article, filed as its follow-up, is the reader's first sight of the story."""
    clock = Clock()
    mail = mail_server()
    email = EmailChannel("mail", EmailChannelSettings(
        type="email", host="127.0.0.1", port=mail.port, security="none",
        sender="newsmon@example.org", to=["desk@example.org"]))
    publish(store, clock, (1,), "mail")
    publish(store, clock, (2,), "mail", source="observer")
    store.silences.add("source", "wire", "drop", "", "me", clock.now,
                       clock.now + timedelta(hours=1))
    d = Deliverer(store.outbox, store.channel_health, direct, {"mail": email}, {}, {},
                  DeliverySettings(), clock)
    asyncio.run(d.deliver_due())
    (stand_in,) = (r.message for r in mail.received)
    assert str(stand_in["Subject"]) == "[newsmon] HIGH: Rule — headline 2"
    assert stand_in["In-Reply-To"] is None
    assert "follow-up to the" not in mail.received[0].part("html")
    # The story's next article follows it, in its thread.
    publish(store, clock, (3,), "mail", source="agency")
    asyncio.run(d.deliver_due())
    follow_up = mail.received[1].message
    assert follow_up["In-Reply-To"] == stand_in["Message-ID"]
    assert str(follow_up["Subject"]).startswith("Re: ")


def test_a_follow_up_of_an_alert_that_failed_stands_in_and_the_next_article_follows_it(
    store: Store,
) -> None:
    clock = Clock()
    down: dict[str, Any] = {"fail": True}

    def outage(alert: Alert) -> ChannelError | None:
        return ChannelError("desk", "HTTP 503", ChannelFailure.SERVER) if down["fail"] else None

    desk = Recorder("desk", fail=outage)
    d = deliverer(store, clock, {"desk": desk})
    publish(store, clock, (1,), "desk")
    asyncio.run(d.deliver_due())
    clock.now += timedelta(hours=23)
    publish(store, clock, (2,), "desk", source="observer")  # a follow-up of the waiting alert
    clock.now += timedelta(hours=2)  # the alert is past delivery.max_age (24h)
    assert asyncio.run(d.deliver_due()).failed == 1
    down["fail"] = False
    clock.now += timedelta(hours=1)
    asyncio.run(d.deliver_due())
    publish(store, clock, (3,), "desk", source="agency")
    asyncio.run(d.deliver_due())
    assert sent(desk) == [("alert", "headline 2", None), ("follow_up", "headline 3", "ts-1")]


def test_a_follow_up_of_an_alert_that_outlived_its_window_then_failed_follows_the_new_alert(
    store: Store,
) -> None:
    """The alert retries past its rule's dedupe window (the story's next article alerts
    anew: the old alert gave its key up), then fails. Its follow-up, filed in the first
    window, follows the story's new alert; it must not stand in as a second alert."""
    clock = Clock()
    window = timedelta(hours=1)
    publish(store, clock, (1,), "desk", window=window)
    (retrying,) = store.outbox.claim_due(clock.now, 10, timedelta(minutes=5))
    clock.now += timedelta(minutes=10)
    publish(store, clock, (2,), "desk", source="observer", window=window)  # its follow-up
    clock.now += window
    publish(store, clock, (3,), "desk", source="agency", window=window)  # a new window
    assert store.outbox.mark_failed(retrying, "HTTP 503")  # past delivery.max_age
    desk = Recorder("desk")
    asyncio.run(deliverer(store, clock, {"desk": desk}).deliver_due())
    assert sent(desk) == [("alert", "headline 3", None), ("follow_up", "headline 2", "ts-1")]


def test_the_digest_lists_a_follow_up_of_a_dropped_alert_as_the_storys_alert(
    store: Store,
) -> None:
    clock = Clock()
    desk = Recorder("desk")
    publish(store, clock, (1,), "desk", in_digest=True, hold=True)  # a digest-only channel
    publish(store, clock, (2,), "desk", source="observer", in_digest=True, hold=True)
    store.silences.add("source", "wire", "drop", "", "me", clock.now,
                       clock.now + timedelta(hours=8))
    d = deliverer(store, clock, {"desk": desk},
                  desk={"digest": "0 8 * * *", "immediate": False})
    assert asyncio.run(d.send_digest("desk")) == 1
    assert [(a.kind, a.article_title) for a in desk.digests[0].alerts] == [
        ("alert", "headline 2")]


def test_a_follow_up_of_a_failed_alert_is_listed_after_the_storys_new_alert_in_one_digest(
    store: Store,
) -> None:
    """The follow-up (held for the digest) waits for its alert, which fails; the story's
    next article alerts anew, filed after the follow-up. Both are in the same digest,
    the follow-up after the alert it now follows, not left for the next digest."""
    clock = Clock()
    desk = Recorder("desk")
    to_digest = {"in_digest": True, "follow_ups": "digest"}
    file(store, clock, (1, make_alert(1, story="st"), to_digest))
    (failing,) = store.outbox.claim_due(clock.now, 10, timedelta(minutes=5))
    file(store, clock, (2, make_alert(2, story="st"), to_digest))  # its follow-up
    assert store.outbox.mark_failed(failing, "HTTP 503")
    file(store, clock, (3, make_alert(3, story="st"), to_digest))  # the story alerts anew
    d = deliverer(store, clock, {"desk": desk},
                  desk={"digest": "0 8 * * *", "follow_ups": "digest"})
    assert asyncio.run(d.send_digest("desk")) == 2
    assert [(a.kind, a.article_title) for a in desk.digests[0].alerts] == [
        ("alert", "headline 3"), ("follow_up", "headline 2")]


def test_a_follow_up_standing_in_while_another_node_files_the_storys_new_alert_follows_it(
    postgres_url: str,
) -> None:
    """The dropped alert's follow-up is about to take the story's key as another node
    files a new alert of the story with it: the follow-up follows that alert instead,
    and the claim goes on (no error, no second alert for the story)."""
    store = Store(postgres_url).open()
    clock = Clock()
    publish(store, clock, (1,), "desk")
    publish(store, clock, (2,), "desk", source="observer")
    silence = store.silences.add("source", "wire", "drop", "", "me", clock.now,
                                 clock.now + timedelta(hours=1))
    (dropped,) = store.outbox.claim_due(clock.now, 10, timedelta(minutes=5))
    assert store.outbox.silence_claimed(dropped, silence, False)
    engine = sa.create_engine(store.url)
    other_node = engine.connect()
    other_node.begin()  # files article 3's alert, and has not committed yet
    blocker = other_node.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    other_node.execute(outbox.insert().values(
        channel="desk", rule_id="r1", dedupe_key="st", payload=json.dumps(
            make_alert(3, story="st").to_json()), status="pending", attempts=0,
        next_attempt_at=clock.now, created_at=clock.now, kind="alert"))
    claims: list[Any] = []

    def claim() -> None:
        try:
            claims.append(store.outbox.claim_due(clock.now, 10, timedelta(minutes=5)))
        except Exception as exc:
            claims.append(exc)

    claiming = threading.Thread(target=claim)
    claiming.start()
    with engine.connect() as watch:  # until the claim waits for the other node's commit
        for _ in range(200):
            if watch.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE"
                                     " :blocker = ANY(pg_blocking_pids(pid))"),
                             {"blocker": blocker}).scalar_one():
                break
            time.sleep(0.05)
    other_node.commit()
    other_node.close()
    claiming.join(timeout=30)
    engine.dispose()
    assert claims == [[]]  # the follow-up waits for the new alert, behind it
    (new_alert,) = store.outbox.claim_due(clock.now, 10, timedelta(minutes=5))
    assert (new_alert.alert.kind, new_alert.alert.article_title) == ("alert", "headline 3")
    store.outbox.mark_sent(new_alert.outbox_id, clock.now, "ts-3")
    (follow_up,) = store.outbox.claim_due(clock.now, 10, timedelta(minutes=5))
    store.close()
    assert (follow_up.alert.kind, follow_up.alert.article_title, follow_up.thread) == (
        "follow_up", "headline 2", "ts-3")


def test_a_story_told_by_many_outlets_while_its_alert_waits_holds_back_no_other_story(
    store: Store,
) -> None:
    """More follow-ups than a claim reads (``delivery.batch``) wait for their alert (a
    silence defers it): the channel's other stories are sent all the same."""
    clock = Clock()
    desk = Recorder("desk")
    store.silences.add("source", "wire", "digest", "", "me", clock.now,
                       clock.now + timedelta(hours=1))
    publish(store, clock, (1,), "desk")  # deferred until the silence ends
    publish(store, clock, tuple(range(2, 2 + DeliverySettings().batch)), "desk",
            source="observer")  # its follow-ups, from outlets the silence does not cover
    publish(store, clock, (100,), "desk", source="observer", story="other")
    asyncio.run(deliverer(store, clock, {"desk": desk}).deliver_due())
    assert sent(desk) == [("alert", "headline 100", None)]


def test_follow_ups_of_a_failed_alert_never_block_the_storys_new_alert_behind_them(
    store: Store,
) -> None:
    """The alert failed (past ``delivery.max_age``) with more follow-ups waiting than a
    claim reads; the story's next article, filed before the next round, alerts anew. The
    follow-ups now follow that new alert, filed behind them: it must still go out, and
    they after it, and the channel's other stories too, not wait for ever."""
    clock = Clock()
    down: dict[str, Any] = {"fail": True}

    def outage(alert: Alert) -> ChannelError | None:
        failing = down["fail"] and alert.article_title == "headline 1"
        return ChannelError("desk", "HTTP 503", ChannelFailure.SERVER) if failing else None

    desk = Recorder("desk", fail=outage)
    d = deliverer(store, clock, {"desk": desk})
    publish(store, clock, (1,), "desk")
    asyncio.run(d.deliver_due())
    clock.now += timedelta(hours=23)
    follow_ups = tuple(range(2, 2 + DeliverySettings().batch))
    publish(store, clock, follow_ups, "desk", source="observer")  # waiting behind it
    clock.now += timedelta(hours=2)
    assert asyncio.run(d.deliver_due()).failed == 1  # it gave the story up
    down["fail"] = False
    publish(store, clock, (100,), "desk", source="agency")  # the story alerts anew
    publish(store, clock, (200,), "desk", source="agency", story="other")
    for _ in range(3):  # rounds, delivery.interval apart
        clock.now += timedelta(seconds=5)
        asyncio.run(d.deliver_due())
    assert sent(desk)[:2] == [("alert", "headline 100", None), ("alert", "headline 200", None)]
    assert sent(desk)[2:] == [("follow_up", f"headline {n}", "ts-1") for n in follow_ups]


def test_an_article_filed_as_the_storys_alert_gives_it_up_becomes_its_alert(
    postgres_url: str,
) -> None:
    """Node one files a story's second article: its alert is refused, the story's key
    being held; before it reads which alert holds the key, node two records that alert
    failed (the key given up). The article is then the story's alert, not a follow-up of
    nothing, sent unthreaded as a follow-up to a reader who never got the alert."""
    store, other = Store(postgres_url).open(), Store(postgres_url).open()
    clock = Clock()
    publish(store, clock, (1,), "desk")
    (failing,) = other.outbox.claim_due(clock.now, 10, timedelta(minutes=5))

    def fail_it_meanwhile(conn: Any, cursor: Any, statement: str, parameters: Any,
                          *args: Any) -> None:
        if (statement.startswith("INSERT INTO outbox") and parameters["dedupe_key"] == "st"
                and not failed):  # article 2's alert, refused
            failed.append(other.outbox.mark_failed(failing, "HTTP 503"))

    failed: list[bool] = []

    sa.event.listen(store.engine, "after_cursor_execute", fail_it_meanwhile)
    publish(store, clock, (2,), "desk", source="observer")
    claimed = store.outbox.claim_due(clock.now, 10, timedelta(minutes=5))
    store.close()
    other.close()
    assert failed == [True]
    assert [(c.alert.kind, c.alert.article_title, c.thread) for c in claimed] == [
        ("alert", "headline 2", None)]
