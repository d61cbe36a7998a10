"""`newsmon migrate` moves a single node's SQLite state to PostgreSQL; `newsmon status`
shows the nodes sharing a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.store import Store
from monitor.store.nodes import NodeInfo
from monitor.store.schema import metadata
from tests.conftest import REPO, RULES, SEEDS
from tests.test_cli import _shape, run
from tests.test_daemon import SEED_HEADLINE

WIRE = SEEDS / "feeds" / "wire.xml"
OUTLET = SEEDS / "feeds" / "outlet.atom"
LIVE = {"newsmon_meta", "nodes", "job_leases"}  # not a state to move


def write_config(tmp_path: Path, url: str, *feeds: tuple[str, Path]) -> Path:
    config = tmp_path / f"newsmon-{len(feeds)}.toml"
    text = (f'[storage]\nurl = "{url}"\n[rules]\npaths = ["{RULES}"]\n'
            '[defaults]\nmax_age = "off"\n[channels.console]\ntype = "console"\ncolor = "never"\n')
    for name, path in feeds:
        text += f'[[sources]]\nname = "{name}"\nurl = "{path}"\n'
    config.write_text(text)
    return config


def table_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = sa.create_engine(Store(url).url)
    found: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:  # every table but the running nodes' own
            if table.name in LIVE:
                continue
            key = next(iter(table.primary_key.columns))
            found[table.name] = [dict(r) for r in
                                 conn.execute(sa.select(table).order_by(key)).mappings()]
    engine.dispose()
    return found


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("NEWSMON_")]:
        monkeypatch.delenv(key)


def test_a_single_nodes_state_moves_to_postgresql_and_nothing_is_alerted_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'single.db'}"
    single = write_config(tmp_path, sqlite_url, ("seed-wire", WIRE))
    assert run(capsys, "silence", "add", "--rule", "north-korean-troops", "--for", "1h",
               "--config", str(single))[0] == 0
    code, out, _ = run(capsys, "run", "--once", "--config", str(single))
    assert code == 0
    assert SEED_HEADLINE in out
    before = table_rows(sqlite_url)
    assert all(before[name] for name in ("sources", "channel_state", "silences", "articles",
                                         "hits", "outbox"))
    assert {row["status"] for row in before["outbox"]} == {"sent", "deferred"}

    code, out, err = run(capsys, "migrate", "--from", sqlite_url, "--to", postgres_url)
    assert code == 0, err
    assert f"{len(before['articles'])} articles" in out
    after = table_rows(postgres_url)
    for row in after["sources"]:  # due times and last node kept; leases are not a state
        assert row.pop("lease_owner") is None
        assert row.pop("lease_until") is None
    for row in before["sources"]:
        del row["lease_owner"], row["lease_until"]
    assert after == before

    # The shared database carries on: the known story is not alerted again, a new
    # outlet's articles get new ids after the copied ones and join the known story.
    shared = write_config(tmp_path, postgres_url, ("seed-wire", WIRE), ("baltic-observer", OUTLET))
    code, out, _ = run(capsys, "run", "--once", "--config", str(shared))
    assert code == 0
    assert SEED_HEADLINE not in out
    assert "[HIGH]" not in out  # follow-ups only: every story it tells was alerted already
    assert "Also reported by" in out
    grown = table_rows(postgres_url)
    assert len(grown["articles"]) == len(before["articles"]) + 10
    assert grown["articles"][: len(before["articles"])] == before["articles"]


def test_migrate_refuses_a_target_that_holds_a_state_unless_told_to_replace_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'single.db'}"
    assert run(capsys, "run", "--once", "--config",
               str(write_config(tmp_path, sqlite_url, ("seed-wire", WIRE))))[0] == 0
    assert run(capsys, "migrate", "--from", sqlite_url, "--to", postgres_url)[0] == 0
    target_before = table_rows(postgres_url)

    code, _, err = run(capsys, "migrate", "--from", sqlite_url, "--to", postgres_url)
    assert code == 1
    assert "the target already holds a newsmon state" in err
    assert "--replace" in err
    assert table_rows(postgres_url) == target_before

    code, _, err = run(capsys, "migrate", "--from", sqlite_url, "--to", postgres_url,
                       "--replace")
    assert code == 0, err
    assert table_rows(postgres_url) == target_before


def test_migrate_refuses_a_target_with_nodes_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    target = Store(postgres_url).open()
    now = datetime.now(UTC)
    target.nodes.register(NodeInfo("db1:42:abc", "db1", 42, now), now)
    target.close()
    code, _, err = run(capsys, "migrate", "--from", f"sqlite:///{tmp_path / 'x.db'}",
                       "--to", postgres_url, "--replace")
    assert code == 1
    assert "nodes are running on the target (db1:42:abc): stop them first" in err


def test_status_shows_the_nodes_alive_and_the_sources_each_is_polling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    config = write_config(tmp_path, postgres_url, ("seed-wire", WIRE),
                          ("baltic-observer", OUTLET))
    store = Store(postgres_url).open()
    now = datetime.now(UTC)
    a = NodeInfo("news-1:100:aaaaaa", "news-1", 100, now - timedelta(hours=1))
    b = NodeInfo("news-2:200:bbbbbb", "news-2", 200, now - timedelta(minutes=5))
    dead = NodeInfo("news-3:300:cccccc", "news-3", 300, now - timedelta(hours=2))
    store.nodes.register(dead, now - timedelta(minutes=10))
    store.nodes.register(a, now)
    store.nodes.register(b, now)
    store.nodes.add_sources([("seed-wire", str(WIRE)), ("baltic-observer", str(OUTLET))])
    store.nodes.claim_due(a.id, ["seed-wire"], now, timedelta(minutes=1), 1)
    store.close()
    code, out, _ = run(capsys, "status", "--json", "--config", str(config))
    assert code == 0
    nodes = json.loads(out)["nodes"]
    docs = (REPO / "docs" / "operations.md").read_text()
    example = json.loads(docs.split("## Status", 1)[1].split("```json", 1)[1].split("```", 1)[0])
    assert _shape(nodes) == _shape(example["nodes"])
    assert [(n["id"], n["polling"]) for n in nodes] == [(a.id, ["seed-wire"]), (b.id, [])]
    code, out, _ = run(capsys, "status", "--config", str(config))
    assert code == 0
    assert "nodes: 2 alive" in out
    assert "news-1:100:aaaaaa: up since 60m ago, heartbeat 0s ago, polling 1 sources: seed-wire" \
        in out
    assert "news-2:200:bbbbbb: up since 5m ago" in out
    assert "polling 0 sources" in out
    assert "news-3" not in out
