"""Black-box: the running daemon through a bad reload, a good reload and a stop mid-send.

Written from DESIGN.md ("A bad rule file is reported with file, line and column; at
reload, the rules that were running keep running until a valid set replaces them"),
docs/operations.md ("Reload without a restart", "Signals") and the delivery promises
only. ``python -m monitor run`` polls a local feed every second; the test edits the rule
file under it (the file watch reloads), adds stories to the feed, and finally stops the
daemon with SIGTERM while a webhook send hangs; ``run --once`` then sends that alert.
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.blackbox_support import (
    Reply,
    Result,
    WebServer,
    current_stderr,
    newsmon,
    once_per_session,
    rfc822,
    rss,
    start,
    terminate,
    wait_until,
)

NOW = time.time()

RULE = """\
id: watch
title: Watch
severity: high
query: sanctions
notify: [hook]
dedupe: {scope: article}
examples:
  match: ["new sanctions"]
  no_match: ["new tariffs"]
"""
BROKEN = RULE.replace("query: sanctions", "query: sanctions AND (russia")  # line 4, col 22
WIDER = RULE.replace("query: sanctions", "query: sanctions OR tariffs").replace(
    'no_match: ["new tariffs"]', 'no_match: ["markets"]')


def story(n: int, title: str) -> dict[str, str]:
    return {"title": title, "link": f"http://w.example/{n}", "guid": f"w-{n}",
            "pubDate": rfc822(NOW - 600 + n), "description": f"{title}, officials said."}


S1 = story(1, "EU weighs sanctions on Belarus potash")
S2 = story(2, "Japan adds sanctions on Russian shipping firms")
S3 = story(3, "Canada announces tariffs on Chinese steel")
S4 = story(4, "UK sanctions Georgian officials over crackdown")


@dataclass
class Run:
    stderr: str = ""
    stopped: Result | None = None
    again: Result | None = None
    posts: list[dict[str, Any]] = field(default_factory=list)
    cut: list[dict[str, Any]] = field(default_factory=list)
    rule_path: Path = Path()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return once_per_session(tmp_path_factory, "daemon", lambda: observe(tmp_path_factory))


def observe(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder: Path = tmp_path_factory.mktemp("daemon")
    rules = folder / "rules"
    rules.mkdir()
    rule_path = rules / "watch.yaml"
    rule_path.write_text(RULE)
    record = Run(rule_path=rule_path)
    with WebServer() as web:
        items = [S1]

        def feed(request: Any) -> Reply:
            return Reply(body=rss(list(items)))

        web.routes["/w.xml"] = feed
        (folder / "newsmon.toml").write_text(f"""
[storage]
url = "sqlite:///state.db"
[rules]
paths = ["rules"]
[[sources]]
name = "wire"
url = "{web.url('/w.xml')}"
interval = "1s"
[channels.hook]
type = "webhook"
url = "{web.url('/hook')}"
""")

        def titles() -> list[str]:
            return [p["article"]["title"] for p in web.hooks()]

        daemon = start(["run", "--config", "newsmon.toml"], folder)
        try:
            wait_until(lambda: S1["title"] in titles(), 20, "the first alert")
            rule_path.write_text(BROKEN)
            wait_until(lambda: "still running the previous set" in current_stderr(daemon), 20,
                       "the rejected reload")
            items.append(S2)
            items.append(S3)
            wait_until(lambda: S2["title"] in titles(), 20, "an alert after the bad reload")
            rule_path.write_text(WIDER)
            wait_until(lambda: re.search(r"reloaded: ", current_stderr(daemon)) is not None, 20,
                       "the good reload")
            items.append(dict(S3, guid="w-3b", link="http://w.example/3b",
                              title=S3["title"] + " and aluminium"))
            wait_until(lambda: any("aluminium" in t for t in titles()), 20,
                       "an alert by the new rule")
            web.hook_delay = 60
            web.hook_started.clear()
            items.append(S4)
            wait_until(web.hook_started.is_set, 20, "a hanging send")
            time.sleep(0.3)
        finally:
            record.stderr = current_stderr(daemon)
            record.stopped = terminate(daemon, signal.SIGTERM, timeout=20)
        record.cut = web.hooks()
        web.hook_delay = 0
        record.again = newsmon("run", "--once", "--config", "newsmon.toml", cwd=folder)
        record.posts = web.hooks()
        return record


def test_a_bad_rule_file_at_reload_is_logged_with_its_file_line_and_column(run: Run) -> None:
    lines = [line for line in run.stderr.splitlines() if "reload rejected" in line]
    assert any(f"{run.rule_path}:4:22: error:" in line or "rules/watch.yaml:4:22: error:"
               in line for line in lines), lines


def test_rules_that_were_running_keep_running_after_a_rejected_reload(run: Run) -> None:
    titles = [p["article"]["title"] for p in run.posts]
    assert S2["title"] in titles
    assert S3["title"] not in titles  # "tariffs" only matches the later, valid set


def test_a_valid_rule_file_replaces_the_running_set(run: Run) -> None:
    titles = [p["article"]["title"] for p in run.posts]
    assert S3["title"] + " and aluminium" in titles


def test_sigterm_during_a_hanging_send_exits_0(run: Run) -> None:
    assert run.stopped is not None
    assert run.stopped.rc == 0, run.stopped.stderr[-2000:]


def test_a_send_abandoned_at_stop_is_sent_at_the_next_start_and_nothing_else_twice(
        run: Run) -> None:
    assert run.again is not None
    assert run.again.rc == 0, run.again.stderr
    titles = Counter(p["article"]["title"] for p in run.posts)
    assert titles[S4["title"]] == 2, titles  # the cut send, then the one after the restart
    assert all(n == 1 for t, n in titles.items() if t != S4["title"]), titles
