"""The outbox under SIGKILL: every planned alert arrives; only in-flight sends repeat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import REPO, RULES, SEEDS, FeedServer, Route

pytestmark = pytest.mark.slow


def start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                            env={**os.environ})


def wait(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_sigkill_mid_batch_loses_nothing_and_repeats_only_in_flight_sends(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    wire = feed_server.serve("/wire.xml", (SEEDS / "feeds" / "wire.xml").read_bytes())
    observer = feed_server.serve("/outlet.atom", (SEEDS / "feeds" / "outlet.atom").read_bytes())
    feed_server.routes["/hook"] = Route(body=b"ok", delay=0.3)  # a slow receiver
    config = tmp_path / "newsmon.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///state.db"
[rules]
paths = ["{RULES}"]
[defaults]
max_age = "off"
channels = ["hook"]
[delivery]
interval = "1s"
[[sources]]
name = "seed-wire"
url = "{wire}"
[[sources]]
name = "baltic-observer"
url = "{observer}"
[channels.hook]
type = "webhook"
url = "{feed_server.url('/hook')}"
""")

    def received() -> list[str]:
        return [json.loads(r.body)["key"] for r in feed_server.requests_to("/hook")]

    first = start(config)
    try:
        wait(lambda: len(received()) >= 3, timeout=20)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    at_kill = len(received())

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.connect() as conn:
        planned = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
    assert planned == 10 > at_kill

    second = start(config)
    try:
        wait(lambda: len(set(received())) >= planned, timeout=30)
        time.sleep(0.5)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    with engine.connect() as conn:
        query = sa.text("SELECT status, count(*) FROM outbox GROUP BY status")
        statuses = dict(conn.execute(query).all())
    engine.dispose()
    counts = Counter(received())
    assert len(counts) == planned
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= 1  # one channel sends one alert at a time: at most one was in flight
    assert statuses == {"sent": planned}
