"""The daemon as users run it: a real subprocess, feeds over HTTP, signals, a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, RULES, SEEDS, FeedServer
from tests.daemon_process import DaemonProcess as Daemon

SEED_HEADLINE = "Biden authorises Ukraine to strike Russia with US long-range missiles"
RETOLD_HEADLINE = "Washington lifts curbs on ATACMS strikes inside Russia"

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, feed_server: FeedServer) -> Path:
    wire = feed_server.serve("/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())
    observer = feed_server.serve("/outlet.atom", (SEEDS / "feeds" / "outlet.atom").read_bytes(),
                                 content_type="application/atom+xml")
    config = tmp_path / "newsmon.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///state.db"

[rules]
paths = ["{RULES}"]

[defaults]
max_age = "off"

[[sources]]
name = "seed-wire"
url = "{wire}"
interval = "1m"

[[sources]]
name = "baltic-observer"
url = "{observer}"
interval = "1m"

[channels.console]
type = "console"
color = "never"
""")
    return config


def test_alerts_arrive_within_seconds_and_a_restart_repeats_none(
    tmp_path: Path, feed_server: FeedServer, request: pytest.FixtureRequest
) -> None:
    config = write_config(tmp_path, feed_server)
    first = Daemon("--config", str(config))
    request.addfinalizer(first.kill)
    assert first.wait_for(SEED_HEADLINE) < 10
    first.wait_for(RETOLD_HEADLINE)
    deadline = time.monotonic() + 30  # every planned alert and follow-up is sent, however busy
    while time.monotonic() < deadline and sum(
            "sent alert" in line or "sent follow-up" in line for line in first.stderr) < 10:
        time.sleep(0.05)
    code, took = first.stop(signal.SIGTERM)
    assert (code, took < 5) == (0, True)
    output = "".join(first.stdout)
    assert "[HIGH] Policy shift on long-range strikes into Russia" in output
    assert "[MEDIUM] New sanctions package against Russia" in output
    # Both outlets' retellings of a story make one alert per rule, and follow-ups.
    alerts = [line for line in first.stdout if line.startswith("[")]
    follow_ups = [line for line in first.stdout if line.startswith("Also reported by")]
    assert len(alerts) >= 5
    assert len(follow_ups) >= 3
    assert len(alerts) + len(follow_ups) == 10

    second = Daemon("--config", str(config))
    request.addfinalizer(second.kill)
    second.wait_for("source seed-wire: 12 items, 0 new, 0 alerts", where="stderr")
    second.wait_for("source baltic-observer: 10 items, 0 new, 0 alerts", where="stderr")
    code, took = second.stop(signal.SIGINT)
    assert (code, took < 5) == (0, True)
    assert "".join(second.stdout) == ""


def test_run_once_on_the_example_configuration_alerts_on_the_seed_story(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "--config",
         str(REPO / "config.example.toml")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "NEWSMON_STORAGE__URL": f"sqlite:///{tmp_path / 'demo.db'}"},
    )
    assert result.returncode == 0, result.stderr
    assert SEED_HEADLINE in result.stdout
    assert "matched:" in result.stdout
    again = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "--config",
         str(REPO / "config.example.toml")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "NEWSMON_STORAGE__URL": f"sqlite:///{tmp_path / 'demo.db'}"},
    )
    assert again.returncode == 0
    assert again.stdout == ""


def test_run_once_exits_zero_when_a_source_fails_and_names_it(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    config = write_config(tmp_path, feed_server)
    config.write_text(config.read_text() + f"""
[[sources]]
name = "gone"
url = "{feed_server.url('/missing')}"
""")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0
    assert "source gone" in result.stderr
    assert "HTTP 404" in result.stderr
    assert SEED_HEADLINE in result.stdout
