"""A parse that runs away is stopped at the deadline, costs only its source, and does not
hold up a shutdown. The runaway is a real one: feedparser over 20,000 attributes."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.config import Settings, resolve_paths
from tests.conftest import REPO, RULES, SEEDS, FeedServer, run_cycles
from tests.test_workers import SLOW_FEED

SEED_HEADLINE = "Biden authorises Ukraine to strike Russia with US long-range missiles"


def test_a_runaway_parse_is_stopped_at_the_deadline_and_the_other_sources_alert(
    tmp_path: Path, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    runaway = feed_server.serve("/runaway.xml", SLOW_FEED)
    wire = feed_server.serve("/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())
    settings = resolve_paths(Settings(
        storage={"url": f"sqlite:///{tmp_path / 'state.db'}"},  # type: ignore[arg-type]
        rules={"paths": [str(RULES)]},  # type: ignore[arg-type]
        defaults={"max_age": "off"},  # type: ignore[arg-type]
        parse={"deadline": "1s", "workers": 2},  # type: ignore[arg-type]
        sources=[{"name": "runaway", "url": runaway},  # type: ignore[list-item]
                 {"name": "seed-wire", "url": wire}],
    ), tmp_path)
    out = io.StringIO()
    with caplog.at_level(logging.INFO):
        # The second cycle runs on a replacement for the worker that was killed.
        first, second = run_cycles(settings, out, cycles=2)
    for report in (first, second):
        polls = {p.source: p for p in report.polls}
        assert polls["runaway"].error == (f"source runaway ({runaway}): parsing ran past the"
                                          " deadline of 1s; the parser was stopped")
        assert polls["seed-wire"].error is None
    assert SEED_HEADLINE in out.getvalue()
    assert any(f"source runaway ({runaway}): parsing ran past the deadline" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)


@pytest.mark.slow
def test_sigterm_stops_the_daemon_and_its_workers_promptly_in_the_middle_of_a_parse(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    runaway = feed_server.serve("/runaway.xml", SLOW_FEED)
    config = tmp_path / "newsmon.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///state.db"
[rules]
paths = ["{RULES}"]
[parse]
deadline = "5m"
[[sources]]
name = "runaway"
url = "{runaway}"
""")
    daemon = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not feed_server.requests_to("/runaway.xml") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feed_server.requests_to("/runaway.xml"), "the daemon never polled"
        # A worker (a child of the fork server, not of the daemon) parsing the feed, which
        # would take about 8 s.
        while not _workers(daemon.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _workers(daemon.pid), "parsing runs in worker processes"
        time.sleep(0.5)
        family = [pid for pid, _ in _descendants(daemon.pid)]
        # As systemd stops a unit: every process of its control group, in no set order
        # (here the workers first, the harder case for the parse under way).
        for pid in family:
            os.kill(pid, signal.SIGTERM)
        time.sleep(0.3)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=5)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0
    assert "Traceback" not in stderr.decode()
    time.sleep(0.5)
    assert [pid for pid in family if _alive(pid)] == []
    # The parse was stopped by the daemon, not lost to a signal: no failure is charged.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.connect() as conn:
        failures = conn.execute(sa.text("SELECT consecutive_failures FROM sources")).all()
    engine.dispose()
    assert failures in ([], [(0,)]), stderr.decode()


def _workers(root: int) -> list[int]:
    return [pid for pid, parent in _descendants(root) if parent != root]


def _descendants(root: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every process below ``root``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
    found: list[tuple[int, int]] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend((child, parent) for child in children)
        frontier.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
