"""`newsmon run` as a service: systemd notifications, reloads, and stopping on SIGTERM.

A real subprocess each time, feeds and Slack on 127.0.0.1, the real SQLite file.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import FeedServer
from tests.daemon_process import DaemonProcess
from tests.service_fixtures import BROKEN_RULE, NotifySocket, rss, rule, write
from tests.slack_server import (
    TOKEN,
    SlackServer,
    slack_server_fixture,  # noqa: F401
)

pytestmark = pytest.mark.slow

SCHOLZ = "Scholz phones Putin for the first time in nearly two years"
SCHOLZ_AGAIN = "Scholz visits Warsaw for talks on the defence budget"
BORRELL = "Borrell tells EU ministers to learn the language of power"
SCHOLZ_THIRD = "Scholz names a new finance minister after the coalition breaks"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.close()


def write_config(tmp_path: Path, feed_url: str, *, watch: bool, extra: str = "") -> Path:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    write(rules / "watch.yaml", rule("scholz", "Scholz"))
    config = tmp_path / "newsmon.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///state.db"
[rules]
paths = ["rules"]
[defaults]
max_age = "off"
[delivery]
interval = "1s"
[reload]
watch = {"true" if watch else "false"}
[[sources]]
name = "wire"
url = "{feed_url}"
interval = "1s"
[channels.console]
type = "console"
color = "never"
{extra}
""")
    return config


def start(config: Path, request: pytest.FixtureRequest, **env: str) -> DaemonProcess:
    daemon = DaemonProcess("--config", str(config), env=env)
    request.addfinalizer(daemon.kill)
    return daemon


def alerted_on_scholz(tmp_path: Path, feed_server: FeedServer, request: pytest.FixtureRequest,
                      *, watch: bool) -> tuple[DaemonProcess, Path]:
    """A daemon whose one rule (Scholz) has alerted on the first item of its one feed."""
    feed = feed_server.serve("/wire.xml", rss(SCHOLZ))
    config = write_config(tmp_path, feed, watch=watch)
    daemon = start(config, request)
    daemon.wait_for(SCHOLZ)
    return daemon, config


def test_systemd_hears_ready_once_scheduled_then_watchdog_pings_and_stopping(
    tmp_path: Path, feed_server: FeedServer, notify_socket: NotifySocket,
    request: pytest.FixtureRequest,
) -> None:
    feed = feed_server.serve("/wire.xml", rss(SCHOLZ))
    daemon = start(write_config(tmp_path, feed, watch=False), request,
                   NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="400000")
    ready = notify_socket.messages[notify_socket.wait_for("READY=1")]
    assert "STATUS=running: 1 sources, 1 rules, channels: console" in ready.splitlines()
    first_ping = notify_socket.wait_for("WATCHDOG=1")
    started = time.monotonic()
    notify_socket.wait_for("WATCHDOG=1", after=notify_socket.wait_for("WATCHDOG=1",
                                                                      after=first_ping + 1) + 1)
    assert time.monotonic() - started < 2  # every 0.2 s: half of WATCHDOG_USEC
    daemon.process.send_signal(signal.SIGHUP)
    reloading = notify_socket.wait_for("RELOADING=1", after=len(notify_socket.messages))
    notify_socket.wait_for("READY=1", after=reloading + 1)
    code, took = daemon.stop(signal.SIGTERM)
    notify_socket.wait_for("STOPPING=1")
    assert (code, took < 10) == (0, True)


def test_sighup_with_a_broken_rule_keeps_the_old_rules_and_logs_path_line_col(
    tmp_path: Path, feed_server: FeedServer, request: pytest.FixtureRequest
) -> None:
    daemon, _ = alerted_on_scholz(tmp_path, feed_server, request, watch=False)
    broken = tmp_path / "rules" / "watch.yaml"
    write(broken, BROKEN_RULE)
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for(rf"reload rejected: {broken}:\d+:\d+: error: ", "stderr", pattern=True)
    daemon.wait_for("reload rejected: still running the previous set", "stderr")
    feed_server.serve("/wire.xml", rss(SCHOLZ_AGAIN, SCHOLZ))
    daemon.wait_for(SCHOLZ_AGAIN)  # the old rule still matches
    code, _ = daemon.stop(signal.SIGTERM)
    assert code == 0


def test_sighup_with_good_rules_makes_the_new_rules_match_and_the_old_ones_stop(
    tmp_path: Path, feed_server: FeedServer, request: pytest.FixtureRequest
) -> None:
    daemon, _ = alerted_on_scholz(tmp_path, feed_server, request, watch=False)
    write(tmp_path / "rules" / "watch.yaml", rule("borrell", "Borrell"))
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for("reloaded: 1 sources, 1 rules", "stderr")
    feed_server.serve("/wire.xml", rss(SCHOLZ_THIRD, BORRELL, SCHOLZ))
    daemon.wait_for(BORRELL)
    daemon.wait_for("source wire: 3 items, 2 new, 1 alerts", "stderr")
    time.sleep(1.5)  # a delivery round later: had Scholz matched, it would show by now
    code, _ = daemon.stop(signal.SIGTERM)
    assert code == 0
    assert SCHOLZ_THIRD not in "".join(daemon.stdout)


def test_a_changed_rule_file_is_reloaded_without_a_signal(
    tmp_path: Path, feed_server: FeedServer, request: pytest.FixtureRequest
) -> None:
    daemon, config = alerted_on_scholz(tmp_path, feed_server, request, watch=True)
    rule_file = tmp_path / "rules" / "watch.yaml"
    write(rule_file, BROKEN_RULE)
    daemon.wait_for(rf"reload rejected: {rule_file}:\d+:\d+: error: ", "stderr", pattern=True)
    write(tmp_path / "rules" / "more.yaml", rule("borrell", "Borrell"))
    write(rule_file, rule("scholz", "Scholz"))
    daemon.wait_for("reloaded: 1 sources, 2 rules", "stderr")
    # The configuration file is watched too: a source added there is polled.
    config.write_text(config.read_text() + f"""
[[sources]]
name = "second-wire"
url = "{feed_server.serve('/second.xml', rss(BORRELL))}"
interval = "1s"
""")
    daemon.wait_for("source second-wire: added", "stderr")
    daemon.wait_for(BORRELL)
    code, _ = daemon.stop(signal.SIGTERM)
    assert code == 0


def test_sigterm_mid_poll_and_mid_send_exits_promptly_and_loses_nothing(
    tmp_path: Path, feed_server: FeedServer, slack_server: SlackServer,
    request: pytest.FixtureRequest,
) -> None:
    titles = [SCHOLZ, SCHOLZ_AGAIN, SCHOLZ_THIRD]
    feed = feed_server.serve("/wire.xml", rss(*titles))
    # A source that trickles its body: its poll is always in flight.
    slow = feed_server.serve("/slow.xml", rss(BORRELL), chunk_delay=0.5)
    # The first Slack call hangs on a reply that trickles for minutes: a stuck worker thread.
    slack_server.fail_next(200, {"ok": True, "ts": "1.1", "padding": "x" * 400}, trickle=1.0)
    config = write_config(tmp_path, feed, watch=False, extra=f"""
[channels.desk]
type = "slack"
token = "{TOKEN}"
channel = "#news"
api_url = "{slack_server.api_url}"
timeout = "5m"
[[sources]]
name = "slow-wire"
url = "{slow}"
""")
    text = config.read_text().replace('[defaults]\nmax_age = "off"',
                                      '[defaults]\nmax_age = "off"\nchannels = ["desk"]')
    config.write_text(text)
    first = start(config, request)
    first.wait_for("source wire: 3 items, 3 new, 3 alerts", "stderr")
    deadline = time.monotonic() + 10
    while not slack_server.posts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slack_server.posts, "the first send never started"
    code, took = first.stop(signal.SIGTERM)
    assert (code, took < 10) == (0, True), "".join(first.stderr)
    assert not slack_server.messages[1:]  # the stuck send held the channel: nothing else went

    second = start(config, request)
    deadline = time.monotonic() + 15
    while len(slack_server.posts) < 1 + len(titles) and time.monotonic() < deadline:
        time.sleep(0.1)
    code, _ = second.stop(signal.SIGTERM)
    assert code == 0
    sent = [title for title in titles
            if any(title in str(post.body) for post in slack_server.posts[1:])]
    assert sent == titles
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.connect() as conn:
        statuses = dict(conn.execute(
            sa.text("SELECT status, count(*) FROM outbox GROUP BY status")).all())
    engine.dispose()
    assert statuses == {"sent": len(titles)}


def test_an_unreachable_channel_and_source_do_not_stop_the_start(
    tmp_path: Path, feed_server: FeedServer, notify_socket: NotifySocket,
    request: pytest.FixtureRequest,
) -> None:
    feed = feed_server.serve("/wire.xml", rss(SCHOLZ))
    config = write_config(tmp_path, feed, watch=False, extra="""
[channels.desk]
type = "slack"
token = "xoxb-unreachable"
channel = "#news"
api_url = "http://127.0.0.1:9/api/"
[[sources]]
name = "nowhere"
url = "http://127.0.0.1:9/feed.xml"
""")
    config.write_text(config.read_text().replace(
        '[defaults]\nmax_age = "off"', '[defaults]\nmax_age = "off"\nchannels = ["desk"]'))
    daemon = start(config, request, NOTIFY_SOCKET=notify_socket.address)
    notify_socket.wait_for("READY=1")
    daemon.wait_for("source nowhere (http://127.0.0.1:9/feed.xml): ", "stderr")
    daemon.wait_for("to channel desk failed (attempt 1)", "stderr")
    code, took = daemon.stop(signal.SIGTERM)
    assert (code, took < 10) == (0, True)
