"""Silences: stored for every node, applied where alerts are filed, never losing an alert."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.cli import main
from monitor.errors import StoreError
from monitor.plan import PlannedAlert
from monitor.records import Alert, Article, Hit, Span
from monitor.severity import Severity
from monitor.silence import Silence, silencing
from monitor.store import NewArticle, SourceState, Store
from monitor.store.migrate import SCHEMA_VERSION, STEPS
from monitor.store.schema import meta, metadata
from tests.conftest import RULES, SEEDS
from tests.test_cli import run as cli
from tests.test_daemon import Clock, console, cycle, settings_for
from tests.test_deliver import Clock as DeliverClock
from tests.test_deliver import Recorder, deliverer, file, make_alert
from tests.test_store import create_version_1

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def alert(rule: str = "r1", channel: str = "console", source: str = "wire",
          identity: str = "a1") -> Alert:
    return Alert(rule_id=rule, rule_title="Rule", severity=Severity.HIGH, channel=channel,
                 story_id=f"story-{identity}", article_title="Headline", article_url=None,
                 source=source, published=NOW, snippet="", matched_terms=("x",),
                 spans=(Span("title", 0, 1, "x"),), article_identity=identity)


def new_article(identity: str, *alerts: Alert, story: str | None = None,
                in_digest: bool = False) -> NewArticle:
    article = Article(source="wire", identity=identity, guid=identity, url=None, title="T",
                      summary="", content="c", author="", published=NOW, fetched=NOW,
                      language="en")
    filed = tuple(PlannedAlert(a, story or a.story_id, "thread", in_digest, hold=in_digest)
                  for a in alerts)
    return NewArticle(article, story or f"story-{identity}", (Hit("r1", ()),), filed)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url).open()
    yield opened
    opened.close()


def by_status(store: Store) -> dict[tuple[str, str], int]:
    return {(c.channel, c.status): c.count for c in store.outbox_counts.counts()}


def test_a_silence_covers_its_rule_source_or_channel_only_while_it_lasts() -> None:
    rule = Silence(1, "rule", "r1", "drop", "", "me", NOW, NOW + timedelta(hours=1))
    source = Silence(2, "source", "wire", "digest", "", "me", NOW, NOW + timedelta(hours=1))
    assert silencing([rule], alert(rule="r1"), NOW) == rule
    assert silencing([rule], alert(rule="r2"), NOW) is None
    assert silencing([rule], alert(), NOW + timedelta(hours=1)) is None  # over
    assert silencing([source], alert(source="other"), NOW) is None
    # Both cover it: the milder one (keep it for the digest) wins.
    assert silencing([rule, source], alert(), NOW) == source


def test_a_drop_silence_records_the_alert_as_silenced_and_keeps_the_story_free(
    store: Store,
) -> None:
    silence = store.silences.add("rule", "r1", "drop", "noisy", "me", NOW,
                                 NOW + timedelta(hours=4))
    outcome = store.save_batch(SourceState("wire", "u"),
                               [new_article("a1", alert(identity="a1"), story="s")], NOW)
    assert outcome.alerts_created == 1
    assert by_status(store) == {("console", "silenced"): 1}
    assert store.outbox.claim_due(NOW + timedelta(days=1), 10, timedelta(minutes=5)) == []
    (count,) = store.silences.counts([silence.id])
    assert (count.status, count.count) == ("silenced", 1)
    # After the silence, the same story alerts as if it were new.
    later = NOW + timedelta(hours=5)
    store.save_batch(SourceState("wire", "u"),
                     [new_article("a2", alert(identity="a2"), story="s")], later)
    (delivery,) = store.outbox.claim_due(later, 10, timedelta(minutes=5))
    assert delivery.alert.kind == "alert"
    assert delivery.alert.article_identity == "a2"


def test_a_digest_silence_holds_alerts_for_the_digest_or_until_it_ends(store: Store) -> None:
    ends = NOW + timedelta(hours=2)
    silence = store.silences.add("source", "wire", "digest", "", "me", NOW, ends)
    store.save_batch(SourceState("wire", "u"), [
        new_article("a1", alert(channel="desk", identity="a1"), in_digest=True),
        new_article("a2", alert(channel="console", identity="a2")),
    ], NOW)
    assert by_status(store) == {("desk", "held"): 1, ("console", "deferred"): 1}
    assert [a.article_identity for _, a in store.outbox.digest_rows("desk", NOW)] == ["a1"]
    assert store.outbox.claim_due(ends - timedelta(seconds=1), 10, timedelta(minutes=5)) == []
    (delivery,) = store.outbox.claim_due(ends, 10, timedelta(minutes=5))
    assert delivery.alert.article_identity == "a2"
    assert {c.status for c in store.silences.counts([silence.id])} == {"held", "sending"}


def test_removing_a_silence_releases_what_waits_for_its_end(store: Store) -> None:
    silence = store.silences.add("channel", "console", "digest", "", "me", NOW,
                                 NOW + timedelta(hours=8))
    store.save_batch(SourceState("wire", "u"), [new_article("a1", alert())], NOW)
    later = NOW + timedelta(minutes=30)
    assert store.outbox.claim_due(later, 10, timedelta(minutes=5)) == []
    removed = store.silences.remove(silence.id, later)
    assert removed.until == later
    assert store.silences.active(later) == []
    assert len(store.outbox.claim_due(later, 10, timedelta(minutes=5))) == 1
    with pytest.raises(StoreError, match="already ended"):
        store.silences.remove(silence.id, later)
    with pytest.raises(StoreError, match="there is no silence 99"):
        store.silences.remove(99, later)


def test_a_source_silence_also_covers_the_sources_health_alerts(store: Store) -> None:
    store.silences.add("source", "wire", "drop", "known outage", "me", NOW,
                       NOW + timedelta(hours=1))
    health = alert(rule="source-health", source="wire", identity="")
    filed = store.record_failure(SourceState("wire", "u", consecutive_failures=9), NOW,
                                 [PlannedAlert(health, "health:wire:failing", "none", False,
                                               False)])
    assert filed == 1
    assert by_status(store) == {("console", "silenced"): 1}


def test_a_silence_added_through_one_store_covers_alerts_filed_through_another(
    store: Store, store_url: str
) -> None:
    other_node = Store(store_url).open()
    try:
        other_node.silences.add("rule", "r1", "drop", "", "me", NOW, NOW + timedelta(hours=1))
        store.save_batch(SourceState("wire", "u"), [new_article("a1", alert())], NOW)
    finally:
        other_node.close()
    assert by_status(store) == {("console", "silenced"): 1}


def test_a_version_3_database_gets_silences_and_keeps_its_alerts(store_url: str) -> None:
    engine = sa.create_engine(Store(store_url).url)
    with engine.begin() as conn:
        create_version_1(conn, store_url)
        for step in (1, 2):
            STEPS[step](conn)
        conn.execute(meta.update().values(value="3"))
        conn.exec_driver_sql(
            "INSERT INTO outbox (channel, rule_id, dedupe_key, payload, status, attempts,"
            " next_attempt_at, created_at) VALUES ('console', 'r1', 's1', "
            f"'{json.dumps(alert().to_json())}', 'pending', 0, '2026-11-26 12:00:00',"
            " '2026-11-26 12:00:00')")
    upgraded = Store(store_url).open()
    try:
        upgraded.silences.add("rule", "r1", "drop", "", "me", NOW, NOW + timedelta(hours=1))
        assert [s.name for s in upgraded.silences.active(NOW)] == ["r1"]
        (delivery,) = upgraded.outbox.claim_due(NOW, 10, timedelta(minutes=5))
        assert delivery.alert == alert()
    finally:
        upgraded.close()
    with engine.connect() as conn:
        version = conn.execute(sa.select(meta.c.value)).scalar_one()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("outbox")}
    engine.dispose()
    assert int(version) == SCHEMA_VERSION >= 4  # through version 4, to the newest
    assert columns == {c.name for c in metadata.tables["outbox"].columns}


# --- through the command line and the daemon ---------------------------------------------


def write_config(tmp_path: Path, digest: bool = False) -> Path:
    config = tmp_path / "newsmon.toml"
    channel = ('[channels.console]\ntype = "console"\ndigest = "0 8 * * *"\nimmediate = false\n'
               if digest else '[channels.console]\ntype = "console"\n')
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
                      f'[rules]\npaths = ["{RULES}"]\n[defaults]\nmax_age = "off"\n'
                      f'[[sources]]\nname = "seed-wire"\nurl = "{SEEDS / "feeds" / "wire.xml"}"\n'
                      + channel)
    return config


def test_silence_add_list_and_remove_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    code, out, _ = cli(capsys, "silence", "add", "--rule", "russia-sanctions-package",
                       "--for", "4h", "--reason", "summit week", "--then", "drop",
                       "--config", config)
    assert code == 0
    assert out.startswith("silence 1 added: rule russia-sanctions-package for 4h, until ")
    code, out, _ = cli(capsys, "silence", "list", "--config", config)
    assert code == 0
    assert "1: rule russia-sanctions-package, drop, 3h59m left" in out
    assert "summit week" in out
    code, out, _ = cli(capsys, "silence", "list", "--json", "--config", config)
    (listed,) = json.loads(out)
    assert (listed["id"], listed["target"], listed["action"], listed["active"]) == (
        1, "rule", "drop", True)
    code, out, _ = cli(capsys, "silence", "remove", "1", "--config", config)
    assert (code, out.strip()) == (
        0, "silence 1 removed: rule russia-sanctions-package alerts as usual from now on")
    assert cli(capsys, "silence", "list", "--config", config)[1].strip() == "no active silences"
    code, _, err = cli(capsys, "silence", "remove", "1", "--config", config)
    assert (code, err.strip()) == (1, "newsmon: silence 1 has already ended")


def test_silence_add_refuses_a_name_that_is_not_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    code, _, err = cli(capsys, "silence", "add", "--source", "seed-wrie", "--for", "1h",
                       "--config", config)
    assert code == 2
    assert err.strip() == "newsmon: silence: unknown source 'seed-wrie' (known: seed-wire)"
    with pytest.raises(SystemExit) as exit_info:
        main(["silence", "add", "--channel", "console", "--for", "soon", "--config", config])
    assert exit_info.value.code == 2
    assert "invalid duration 'soon'" in capsys.readouterr().err


def test_a_silenced_rules_alert_is_recorded_then_sent_in_the_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, digest=False)
    assert cli(capsys, "silence", "add", "--rule", "long-range-strike-policy", "--for", "2h",
               "--config", str(config))[0] == 0
    settings = settings_for(tmp_path, [{"name": "seed-wire",
                                        "url": str(SEEDS / "feeds" / "wire.xml")}],
                            channels={"console": {"type": "console", "digest": "0 8 * * *"}})
    channel, out = console()
    clock = Clock(datetime.now(UTC))
    (first,) = cycle(settings, {"console": channel}, clock)
    assert first.delivery.sent > 0  # the other rules alert as usual
    assert "Policy shift on long-range" not in out.getvalue()
    _, status_out, _ = cli(capsys, "status", "--json", "--config", str(config))
    (silence,) = json.loads(status_out)["silences"]
    assert silence["alerts"] == {"held": 2}
    clock.now = (clock.now + timedelta(days=1)).replace(hour=8, minute=1)
    (due,) = cycle(settings, {"console": channel}, clock)
    assert due.digested >= 2
    digest = out.getvalue().split("newsmon digest:", 1)[1]
    assert "Policy shift on long-range" in digest


def test_a_dropped_alert_is_never_sent_but_shows_in_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert cli(capsys, "silence", "add", "--source", "seed-wire", "--for", "1h",
               "--then", "drop", "--reason", "feed replays its archive",
               "--config", str(config))[0] == 0
    settings = settings_for(tmp_path, [{"name": "seed-wire",
                                        "url": str(SEEDS / "feeds" / "wire.xml")}])
    channel, out = console()
    (report,) = cycle(settings, {"console": channel})
    assert report.polls[0].new == 12  # stored and matched all the same
    assert out.getvalue() == ""
    _, text, _ = cli(capsys, "status", "--config", str(config))
    assert "console: 6 silenced" in text
    assert "1: source seed-wire, drop, 59m left (by " in text
    assert "feed replays its archive; alerts: 6 silenced" in text
    _, stats, _ = cli(capsys, "stats", "--json", "--config", str(config))
    assert json.loads(stats)["total"] == 6  # the hits still count


# --- silences added after an alert was filed ---------------------------------------------

def _waiting_alerts(store: Store, clock: DeliverClock, *numbers: int,
                    in_digest: bool = False) -> None:
    """Alerts filed before any silence, not yet sent (a channel was down, say)."""
    file(store, clock, *[(n, make_alert(n), {"in_digest": in_digest}) for n in numbers])


def test_a_drop_silence_added_later_stops_alerts_already_waiting_in_the_outbox(
    store: Store,
) -> None:
    clock = DeliverClock()
    desk = Recorder("desk")
    _waiting_alerts(store, clock, 1, 2)
    silence = store.silences.add("rule", "r1", "drop", "storm", "me", clock.now,
                                 clock.now + timedelta(hours=1))
    report = asyncio.run(deliverer(store, clock, {"desk": desk}).deliver_due())
    assert desk.sent == []
    assert report.held == 2
    assert by_status(store) == {("desk", "silenced"): 2}
    assert {(c.status, c.count) for c in store.silences.counts([silence.id])} == {
        ("silenced", 2)}
    # Dropped, they hold no story: after the silence the same story alerts again.
    clock.now += timedelta(hours=2)
    file(store, clock, (3, make_alert(3, story="s1"), {}))
    asyncio.run(deliverer(store, clock, {"desk": desk}).deliver_due())
    assert [(a.kind, a.article_title) for a, _ in desk.sent] == [("alert", "headline 3")]


def test_a_digest_silence_added_later_defers_waiting_alerts_until_it_ends(store: Store) -> None:
    clock = DeliverClock()
    desk = Recorder("desk")
    _waiting_alerts(store, clock, 1)
    store.silences.add("channel", "desk", "digest", "", "me", clock.now,
                       clock.now + timedelta(hours=1))
    d = deliverer(store, clock, {"desk": desk})
    asyncio.run(d.deliver_due())
    assert desk.sent == []
    assert by_status(store) == {("desk", "deferred"): 1}
    clock.now += timedelta(minutes=61)
    asyncio.run(d.deliver_due())
    assert desk.titles == ["headline 1"]
    assert by_status(store) == {("desk", "sent"): 1}


def test_a_digest_silence_added_later_moves_waiting_alerts_into_the_channels_digest(
    store: Store,
) -> None:
    clock = DeliverClock()
    desk = Recorder("desk")
    _waiting_alerts(store, clock, 1, 2)
    store.silences.add("rule", "r1", "digest", "", "me", clock.now,
                       clock.now + timedelta(hours=8))
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *"})
    asyncio.run(d.deliver_due())
    assert desk.sent == []
    assert asyncio.run(d.send_digest("desk")) == 2


def test_a_drop_silence_added_later_takes_its_alerts_out_of_the_next_digest(
    store: Store,
) -> None:
    clock = DeliverClock()
    desk = Recorder("desk")
    file(store, clock, (1, make_alert(1), {"in_digest": True, "hold": True}),
         (2, make_alert(2, rule="r2"), {"in_digest": True, "hold": True}))
    store.silences.add("rule", "r1", "drop", "", "me", clock.now,
                       clock.now + timedelta(hours=8))
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *",
                                                      "immediate": False})
    assert asyncio.run(d.send_digest("desk")) == 1
    assert [a.article_title for a in desk.digests[0].alerts] == ["headline 2"]
    assert by_status(store) == {("desk", "silenced"): 1, ("desk", "sent"): 1}


def test_an_alert_a_later_drop_silence_took_out_of_a_digest_stays_out_after_it_ends(
    store: Store,
) -> None:
    clock = DeliverClock()
    desk = Recorder("desk")
    file(store, clock, (1, make_alert(1), {"in_digest": True, "hold": True}))
    store.silences.add("rule", "r1", "drop", "", "me", clock.now,
                       clock.now + timedelta(hours=1))
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *",
                                                      "immediate": False})
    assert asyncio.run(d.send_digest("desk")) == 0
    clock.now += timedelta(hours=2)
    assert asyncio.run(d.send_digest("desk")) == 0
    assert desk.digests == []
    assert by_status(store) == {("desk", "silenced"): 1}


def test_an_alert_dropped_at_send_time_is_not_listed_in_a_digest_after_the_silence(
    store: Store,
) -> None:
    clock = DeliverClock()
    desk = Recorder("desk")
    _waiting_alerts(store, clock, 1, in_digest=True)  # sent at once and listed in the digest
    store.silences.add("rule", "r1", "drop", "", "me", clock.now,
                       clock.now + timedelta(hours=1))
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *"})
    asyncio.run(d.deliver_due())
    clock.now += timedelta(hours=2)
    assert asyncio.run(d.send_digest("desk")) == 0
    assert desk.sent == []
    assert desk.digests == []


def test_a_drop_silence_leaves_an_alert_already_sent_as_sent_and_its_story_alerted(
    store: Store,
) -> None:
    """An alert sent at once and also listed in the digest: the silence came too late."""
    clock = DeliverClock()
    desk = Recorder("desk")
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *"})
    file(store, clock, (1, make_alert(1, story="s1"), {"in_digest": True}))
    asyncio.run(d.deliver_due())
    assert desk.titles == ["headline 1"]
    store.silences.add("rule", "r1", "drop", "", "me", clock.now,
                       clock.now + timedelta(hours=1))
    asyncio.run(d.send_digest("desk"))
    assert by_status(store) == {("desk", "sent"): 1}
    # The story has alerted: its next article, after the silence, is a follow-up.
    clock.now += timedelta(hours=2)
    file(store, clock, (2, make_alert(2, story="s1"), {}))
    asyncio.run(d.deliver_due())
    assert [a.kind for a, _ in desk.sent] == ["alert", "follow_up"]


def test_a_digest_leaves_an_alert_a_delivery_round_is_sending_to_that_round(
    store: Store,
) -> None:
    """A drop silence reached by the digest while the alert is being sent on its own: the
    send stands, and so does the story's key (a dropped row would give it up)."""
    clock = DeliverClock()
    desk = Recorder("desk")
    file(store, clock, (1, make_alert(1, story="s1"), {"in_digest": True}))
    (sending,) = store.outbox.claim_due(clock.now, 10, timedelta(minutes=5))
    store.silences.add("rule", "r1", "drop", "", "me", clock.now,
                       clock.now + timedelta(hours=1))
    d = deliverer(store, clock, {"desk": desk}, desk={"digest": "0 8 * * *"})
    asyncio.run(d.send_digest("desk"))  # lists it: its send is under way, not dropped
    assert by_status(store) == {("desk", "sending"): 1}
    store.outbox.mark_sent(sending.outbox_id, clock.now)
    clock.now += timedelta(hours=2)
    file(store, clock, (2, make_alert(2, story="s1"), {}))
    (follow_up,) = store.outbox.claim_due(clock.now, 10, timedelta(minutes=5))
    assert follow_up.alert.kind == "follow_up"
