"""Black-box: one alert per (rule, story, channel) across restarts, kills and re-publishing.

Written from DESIGN.md, docs/rules.md ("Deduplication"), docs/configuration.md
("Article identity") and docs/operations.md ("Delivery: what is guaranteed") only.
One state folder lives through five runs of ``python -m monitor run`` (``--once``, and
the daemon stopped by SIGKILL mid-send and mid-poll, then by SIGTERM); between runs the
feeds change the way real feeds do. A webhook channel on 127.0.0.1 records every alert
and follow-up; each test below reads one phase of that history.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.blackbox_support import (
    SLACK_API,
    Reply,
    Request,
    Result,
    WebServer,
    finish,
    newsmon,
    once_per_session,
    rfc822,
    rss,
    start,
    status_json,
    terminate,
    wait_until,
    write_rule,
)

NOW = time.time()

RULE = """\
id: events
title: Sanctions and disasters
severity: high
query: sanctions OR volcano OR earthquake OR floods OR wildfire OR tornado
notify: [hook, quiet, slack]
dedupe: {scope: story, window: 72h}
examples:
  match: ["EU adopts sanctions"]
  no_match: ["Markets rally"]
"""

# Matches only the edited version of outlet B's article (phase 2).
HUNGARY_RULE = """\
id: hungary
title: Hungary
severity: high
query: Hungary
notify: [hook]
examples:
  match: ["Hungary drops its veto"]
  no_match: ["Markets rally"]
"""

# One story told by three outlets, each in its own words (phase 1: A and B; phase 2: E).
X_A = {"title": "EU adopts 15th sanctions package against Russia's shadow fleet",
       "link": "http://a.example/world/eu-15th-sanctions-shadow-fleet?utm_source=rss",
       "guid": "a-x", "pubDate": rfc822(NOW - 3 * 3600),
       "description": "European Union ambassadors adopted a 15th package of sanctions against "
                      "Russia on Wednesday, listing 52 more shadow fleet tankers that carry "
                      "Russian crude, Kaja Kallas said in Brussels."}
X_B = {"title": "Brussels blacklists 52 tankers in new Russia sanctions",
       "link": "http://b.example/news/brussels-blacklists-52-tankers",
       "guid": "b-x", "pubDate": rfc822(NOW - 2.5 * 3600),
       "description": "The EU agreed its 15th round of sanctions on Russia, adding 52 shadow "
                      "fleet tankers carrying Russian crude to its blacklist, Kaja Kallas "
                      "announced in Brussels."}
X_E = {"title": "Kallas: shadow fleet tankers hit as EU seals 15th Russia sanctions round",
       "link": "http://e.example/2024/eu-seals-15th-round",
       "guid": "e-x", "pubDate": rfc822(NOW - 2 * 3600),
       "description": "EU envoys sealed a 15th sanctions package against Russia in Brussels, "
                      "blacklisting 52 shadow fleet tankers that ship Russian crude, foreign "
                      "policy chief Kaja Kallas said."}
Y = {"title": "Volcano erupts on Reykjanes peninsula, Grindavik evacuated again",
     "link": "http://a.example/iceland/reykjanes-eruption", "guid": "a-y",
     "pubDate": rfc822(NOW - 1800),
     "description": "Lava fountains rose from a new fissure north of Grindavik, and the Blue "
                    "Lagoon spa was evacuated, Iceland's Met Office said."}
Z1 = {"title": "Earthquake of magnitude 6.1 shakes Hualien county",
      "link": "http://a.example/taiwan/hualien-quake", "guid": "a-z1",
      "pubDate": rfc822(NOW - 1200),
      "description": "Buildings swayed in Taipei after the quake struck off Taiwan's east coast."}
Z2 = {"title": "Floods sweep through Valencia suburbs after record rainfall",
      "link": "http://b.example/spain/valencia-floods", "guid": "b-z2",
      "pubDate": rfc822(NOW - 1100),
      "description": "Cars piled up in Paiporta as a month of rain fell in eight hours."}
V = {"title": "Wildfire forces evacuation of Evia villages",
     "link": "http://slow.example/greece/evia-wildfire", "guid": "s-v",
     "pubDate": rfc822(NOW - 1000),
     "description": "Greek firefighters with water-bombing aircraft battled the blaze overnight."}
W = {"title": "Tornado flattens homes in Oklahoma town of Marietta",
     "link": "http://b.example/us/marietta-tornado", "guid": "b-w",
     "pubDate": rfc822(NOW - 900),
     "description": "Storm chasers filmed the twister crossing Interstate 35 at dusk."}
# Story X once more, after the silence on rule "hungary" that dropped its alert has gone.
X_H = {"title": "Hungary lifts veto as EU seals 15th Russia sanctions package on shadow fleet",
       "link": "http://b.example/news/hungary-lifts-veto-15th-package", "guid": "b-xh",
       "pubDate": rfc822(NOW - 1.5 * 3600),
       "description": "Hungary dropped its veto and EU ambassadors sealed the 15th package of "
                      "sanctions against Russia, blacklisting 52 shadow fleet tankers, Kaja "
                      "Kallas said in Brussels."}
# One story, but a dedupe window of 2 seconds: once the window has passed (by the clock
# and by publication time alike), the story's next article alerts again.
SHORT_WINDOW_RULE = """\
id: short-window
title: Shadow fleet, short window
severity: high
query: '"shadow fleet"'
notify: [hook]
dedupe: {scope: story, window: 2s}
examples:
  match: ["shadow fleet tankers"]
  no_match: ["fleet"]
"""

QUIET = {"title": "Bond yields edge lower", "link": "http://d.example/markets/bonds",
         "guid": "d-1", "pubDate": rfc822(NOW - 7200),
         "description": "Treasury prices rose slightly in thin holiday trading."}


@dataclass
class History:
    """What the webhook received in each phase, and what newsmon said."""

    posts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    results: dict[str, Result] = field(default_factory=dict)
    requests: dict[str, list[Request]] = field(default_factory=dict)
    quiet: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    health: list[dict[str, Any]] = field(default_factory=list)
    status_after_second: dict[str, Any] = field(default_factory=dict)
    silence: dict[str, Result] = field(default_factory=dict)
    slack: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    backtest: Result | None = None

    def titles(self, phase: str, kind: str | None = None) -> list[str]:
        return [p["article"]["title"] for p in self.posts[phase]
                if kind is None or p["type"] == kind]


def conditional(body: bytes, etag: str, modified: str) -> Any:
    """A feed with an ETag and Last-Modified that answers 304 when the client has them."""
    def route(request: Request) -> Reply:
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"")
        return Reply(200, body, {"ETag": etag, "Last-Modified": modified})
    return route


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return once_per_session(tmp_path_factory, "restarts", lambda: observe(tmp_path_factory))


def observe(tmp_path_factory: pytest.TempPathFactory) -> History:
    folder: Path = tmp_path_factory.mktemp("restarts")
    write_rule(folder / "rules", "events.yaml", RULE)
    write_rule(folder / "rules", "hungary.yaml", HUNGARY_RULE)
    write_rule(folder / "rules", "short-window.yaml", SHORT_WINDOW_RULE)
    record = History()
    gate = threading.Event()
    slow_asked = threading.Event()

    def slow_feed(request: Request) -> Reply:
        slow_asked.set()
        gate.wait(60)
        return Reply(200, rss([V]))

    with WebServer() as web:
        def sources(*names: str) -> str:
            return "".join(f'\n[[sources]]\nname = "{n}"\nurl = "{web.url("/" + n + ".xml")}"\n'
                           f'interval = "10m"\nallow_private = true\n' for n in names)

        def configure(*names: str) -> None:
            (folder / "newsmon.toml").write_text(
                '[storage]\nurl = "sqlite:///state.db"\n[rules]\npaths = ["rules"]\n'
                f'[channels.hook]\ntype = "webhook"\nurl = "{web.url("/hook")}"\n'
                f'[channels.quiet]\ntype = "webhook"\nurl = "{web.url("/hook-quiet")}"\n'
                'follow_ups = "none"\n'
                f'[channels.slack]\ntype = "slack"\ntoken = "xoxb-test"\nchannel = "#news"\n'
                f'api_url = "{web.url(SLACK_API)}"\n'
                f'[channels.health]\ntype = "webhook"\nurl = "{web.url("/hook-health")}"\n'
                '[health]\nchannels = ["health"]\nfailing_after = "1s"\n'
                + sources(*names))

        def mark() -> dict[str, int]:
            return {"hook": len(web.hooks()), "quiet": len(web.hooks("/hook-quiet"))}

        def phase(name: str, result: Result, before: dict[str, int]) -> None:
            record.results[name] = result
            record.posts[name] = web.hooks()[before["hook"]:]
            record.quiet[name] = web.hooks("/hook-quiet")[before["quiet"]:]

        # Phase 1: two outlets tell story X; a quiet feed sends validators.
        web.routes["/a.xml"] = Reply(body=rss([X_A]))
        web.routes["/b.xml"] = Reply(body=rss([X_B]))
        web.routes["/d.xml"] = conditional(rss([QUIET]), '"d-v1"', rfc822(NOW - 7200))
        web.routes["/flaky.xml"] = Reply(500, b"down", content_type="text/plain")
        web.undelayed.add("/hook-health")
        configure("a", "b", "d", "flaky")
        phase("first", newsmon("run", "--once", "--config", "newsmon.toml", cwd=folder),
              {"hook": 0, "quiet": 0})

        # Phase 2: re-published with a new guid, edited in place, copied by another
        # source under a tracking link, retold by a new outlet, plus a new story Y.
        before = mark()
        copied = dict(X_A, guid="c-copy-of-x",
                      link="http://A.EXAMPLE:80/world/eu-15th-sanctions-shadow-fleet"
                           "?utm_campaign=x&fbclid=abc#comments")
        web.routes["/a.xml"] = Reply(body=rss([dict(X_A, guid="a-x-republished"), Y]))
        web.routes["/b.xml"] = Reply(body=rss([dict(
            X_B, title="Brussels blacklists 52 tankers in new Russia sanctions (updated)",
            description=X_B["description"] + " Hungary dropped its objections.")]))
        web.routes["/c.xml"] = Reply(body=rss([copied]))
        web.routes["/e.xml"] = Reply(body=rss([X_E]))
        configure("a", "b", "c", "d", "e", "slow", "flaky")
        web.routes["/slow.xml"] = Reply(body=rss([]))
        record.silence["add"] = newsmon("silence", "add", "--rule", "hungary", "--for", "2h",
                                        "--then", "drop", "--reason", "test",
                                        "--config", "newsmon.toml", cwd=folder)
        time.sleep(1.1)  # the flaky source has been failing for longer than failing_after
        phase("second", newsmon("run", "--once", "--config", "newsmon.toml", cwd=folder), before)
        record.requests["d"] = web.gets("/d.xml")
        record.status_after_second = status_json(folder)
        web.routes["/flaky.xml"] = Reply(body=rss([QUIET]))

        # Phase 3: the daemon, killed (SIGKILL) while a webhook send hangs and a poll of
        # the slow source is under way.
        before = mark()
        web.routes["/a.xml"] = Reply(body=rss([dict(X_A, guid="a-x-republished"), Y, Z1]))
        web.routes["/b.xml"] = Reply(body=rss([X_B, Z2]))
        web.routes["/slow.xml"] = slow_feed
        web.hook_delay = 30
        web.hook_started.clear()
        daemon = start(["run", "--config", "newsmon.toml"], folder)
        wait_until(lambda: web.hook_started.is_set() and slow_asked.is_set(), 40,
                   "a webhook send and the slow poll under way")
        time.sleep(0.3)
        daemon.send_signal(signal.SIGKILL)
        phase("killed", finish(daemon), before)

        # Phase 4: restarted as a daemon; a new story W; stopped by SIGTERM once every
        # story has arrived.
        before = mark()
        web.hook_delay = 0
        gate.set()
        web.routes["/b.xml"] = Reply(body=rss([X_B, Z2, W, X_H]))
        record.silence["remove"] = newsmon("silence", "remove", "1", "--config", "newsmon.toml",
                                           cwd=folder)
        daemon = start(["run", "--config", "newsmon.toml"], folder)
        wanted = {Z1["title"], Z2["title"], V["title"], W["title"], X_H["title"]}
        try:
            wait_until(lambda: wanted <= {p["article"]["title"]
                                          for p in web.hooks()[before["hook"]:]},
                       40, "the alerts of Z1, Z2, V, W and X_H after the restart")
            time.sleep(1)  # anything that would be sent twice has had its chance
        finally:
            phase("restarted", terminate(daemon, signal.SIGTERM, timeout=20), before)

        # Phase 5: one more cycle over the same feeds: nothing new, nothing again.
        before = mark()
        phase("again", newsmon("run", "--once", "--config", "newsmon.toml", cwd=folder), before)
        record.status = status_json(folder)
        record.health = web.hooks("/hook-health")
        record.slack = list(web.slack_messages)

        # Backtest over the stored articles with a proposed rule that drops "volcano".
        write_rule(folder / "proposed", "events.yaml", RULE.replace("volcano OR ", ""))
        write_rule(folder / "proposed", "hungary.yaml", HUNGARY_RULE)
        write_rule(folder / "proposed", "short-window.yaml", SHORT_WINDOW_RULE)
        record.backtest = newsmon("backtest", "--since", "30d", "--rules", "proposed",
                                  "--config", "newsmon.toml", "--json", cwd=folder)
        return record


def test_first_cycle_alerts_a_story_once_and_the_second_outlet_follows_it(
        history: History) -> None:
    posts = [p for p in history.posts["first"] if p["rule"]["id"] == "events"]
    assert history.results["first"].rc == 0, history.results["first"].stderr
    assert [p["type"] for p in posts] == ["alert", "follow_up"], posts
    assert posts[0]["story_id"] == posts[1]["story_id"]
    assert {p["article"]["source"] for p in posts} == {"a", "b"}


def test_restart_repeats_nothing_and_a_new_outlet_follows_the_stored_story(
        history: History) -> None:
    """Re-published guid, edit in place and a tracking-link copy alert nothing; the story
    index survives the restart, so a third outlet's retelling is a follow-up."""
    posts = [p for p in history.posts["second"] if p["rule"]["id"] == "events"]
    assert history.results["second"].rc == 0, history.results["second"].stderr
    by_title = Counter((p["type"], p["article"]["title"]) for p in posts)
    assert by_title == Counter({("follow_up", X_E["title"]): 1, ("alert", Y["title"]): 1}), posts
    follow_up = next(p for p in posts if p["type"] == "follow_up")
    assert follow_up["story_id"] == history.posts["first"][0]["story_id"]


def test_edited_article_plans_an_alert_only_for_the_rule_that_matches_its_new_text(
        history: History) -> None:
    """Rule "hungary" matches only the edit of outlet B's article; a drop silence on it
    records the one alert the edit planned (rule "events" matched before: nothing)."""
    silence = next(s for s in history.status["silences"] if s["name"] == "hungary")
    assert silence["alerts"].get("silenced") == 1, silence
    events = [p for p in history.posts["second"] if p["rule"]["id"] == "events"]
    assert "(updated)" not in json.dumps(events)


def test_channel_with_follow_ups_none_gets_each_story_alert_and_no_follow_up(
        history: History) -> None:
    posts = [p for phase in history.quiet.values() for p in phase]
    assert {p["type"] for p in posts} == {"alert"}, posts
    titles = Counter(p["article"]["title"] for p in posts)
    story_x = [t for t in titles if t in (X_A["title"], X_B["title"])]
    assert len(story_x) == 1, titles  # whichever outlet's version was stored first
    expected = {story_x[0], Y["title"], Z1["title"], Z2["title"], V["title"], W["title"]}
    assert set(titles) == expected, titles
    cut = {p["article"]["title"] for p in history.quiet["killed"]}
    assert all(n == 1 for t, n in titles.items() if t not in cut), titles


def test_slack_follow_up_after_a_restart_replies_in_the_first_alerts_thread(
        history: History) -> None:
    story_x = [m for m in history.slack
               if any(t["title"] in json.dumps(m, ensure_ascii=False) for t in (X_A, X_B, X_E))]
    assert len(story_x) == 3, story_x  # one alert, two follow-ups (the last after a restart)
    alerts = [m for m in story_x if not m.get("thread_ts")]
    assert len(alerts) == 1, story_x
    assert [m["thread_ts"] for m in story_x if m is not alerts[0]] == [alerts[0]["_ts"]] * 2


def test_unchanged_feed_is_asked_with_its_stored_validators_after_a_restart(
        history: History) -> None:
    requests = history.requests["d"]
    assert len(requests) == 2
    assert requests[1].headers.get("if-none-match") == '"d-v1"'
    assert not history.results["second"].lines("source d (")  # a 304 is not a failure


def test_kill_mid_send_and_mid_poll_loses_nothing_and_repeats_only_the_cut_send(
        history: History) -> None:
    cut = history.posts["killed"]
    assert len(cut) == 1, cut  # the send that hung when the process was killed
    after = [p for p in history.posts["restarted"] if p["article"]["title"] != X_H["title"]]
    titles = Counter(p["article"]["title"] for p in cut + after)
    assert set(titles) == {Z1["title"], Z2["title"], V["title"], W["title"]}, titles
    repeated = {t for t, n in titles.items() if n > 1}
    assert repeated <= {cut[0]["article"]["title"]}, titles
    assert all(titles[t] == 1 for t in titles if t != cut[0]["article"]["title"])
    assert all(p["type"] == "alert" for p in cut + after)


def test_sigterm_stops_the_daemon_with_exit_code_0(history: History) -> None:
    result = history.results["restarted"]
    assert result.rc == 0, result.stderr[-2000:]


def test_another_cycle_after_all_that_sends_nothing(history: History) -> None:
    assert history.results["again"].rc == 0
    assert history.posts["again"] == []


def test_each_story_alerted_exactly_once_over_all_runs(history: History) -> None:
    alerts = Counter((p["rule"]["id"], p["story_id"]) for phase in history.posts
                     for p in history.posts[phase]
                     if p["type"] == "alert" and p["rule"]["id"] != "short-window"
                     and phase != "killed")  # the cut send, sent again after the restart
    assert alerts, history.posts
    assert max(alerts.values()) == 1, alerts


def test_status_after_the_runs_shows_sources_healthy_and_nothing_pending(
        history: History) -> None:
    sources = {s["name"]: s for s in history.status["sources"]}
    assert set(sources) >= {"a", "b", "c", "d", "e", "slow"}
    for name, source in sources.items():
        assert source["consecutive_failures"] == 0, (name, source)
        assert source["last_success"] is not None, (name, source)
    hook = next(c for c in history.status["channels"] if c["name"] == "hook")
    assert hook["outbox"]["pending"] == 0, hook
    assert hook["outbox"]["failed"] == 0, hook
    assert "state.db" in history.status["storage"]["url"]


def test_backtest_reports_the_hits_a_proposed_rule_would_remove(history: History) -> None:
    result = history.backtest
    assert result is not None
    assert result.rc == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    row = next(r for r in rows if r["rule"] == "events")
    assert next(r for r in rows if r["rule"] == "hungary")["status"] == "unchanged"
    assert row["status"] == "changed", row
    assert row["removed"]["count"] == 1, row
    assert row["added"]["count"] == 0, row
    assert row["removed"]["examples"][0]["title"] == Y["title"]
    assert row["current_hits"] - row["proposed_hits"] == 1



def test_a_failing_source_backs_off_doubling_and_a_success_resets_it(history: History) -> None:
    flaky = next(s for s in history.status_after_second["sources"] if s["name"] == "flaky")
    assert flaky["consecutive_failures"] == 2, flaky
    waited = (datetime.fromisoformat(flaky["next_poll"])
              - datetime.fromisoformat(flaky["last_attempt"])).total_seconds()
    assert waited >= 2 * 10 * 60 - 60, flaky  # twice the 10m interval, less a little jitter
    after = next(s for s in history.status["sources"] if s["name"] == "flaky")
    assert after["consecutive_failures"] == 0, after
    assert after["last_error"] is None, after


def test_a_source_failing_too_long_raises_one_operational_alert_and_one_recovery(
        history: History) -> None:
    about_flaky = [json.dumps(p) for p in history.health if "flaky" in json.dumps(p)]
    assert len(about_flaky) == 2, history.health
    assert "fail" in about_flaky[0].lower(), about_flaky[0]
    assert "recover" in about_flaky[1].lower() or "back" in about_flaky[1].lower(), about_flaky


def test_a_dropped_alert_gives_its_story_up_so_a_later_article_alerts_anew(
        history: History) -> None:
    assert history.silence["add"].rc == 0, history.silence["add"].stderr
    assert history.silence["remove"].rc == 0, history.silence["remove"].stderr
    assert not [p for p in history.posts["second"] if p["rule"]["id"] == "hungary"]
    hungary = [p for phase in ("killed", "restarted", "again") for p in history.posts[phase]
               if p["rule"]["id"] == "hungary"]
    assert [(p["type"], p["article"]["title"]) for p in hungary] == [("alert", X_H["title"])]
    assert hungary[0]["story_id"] == history.posts["first"][0]["story_id"]


def test_status_lists_the_ended_silence_with_the_alert_it_dropped(history: History) -> None:
    silence = next(s for s in history.status["silences"] if s["name"] == "hungary")
    assert silence["active"] is False, silence
    assert silence["action"] == "drop", silence
    assert silence["alerts"].get("silenced") == 1, silence



def test_a_story_alerts_again_once_its_dedupe_window_has_passed(history: History) -> None:
    posts = [p for phase in history.posts.values() for p in phase
             if p["rule"]["id"] == "short-window"]
    kinds = {p["article"]["title"]: p["type"] for p in posts}
    assert kinds.get(X_E["title"]) == "alert", posts
    assert kinds.get(X_H["title"]) == "alert", posts
    assert len(posts) == len(kinds), posts  # no article twice
