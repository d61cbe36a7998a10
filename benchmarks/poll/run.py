"""Poll 1,000 local feeds with newsmon and with rss2email, side by side.

    .venv/bin/python benchmarks/poll/run.py                  # 1,000 feeds, both tools
    .venv/bin/python benchmarks/poll/run.py --feeds 100 --skip-peer

Three passes over the same feeds, each tool a fresh process per pass, as a user
runs it from cron: **cold** (every item new), **steady** (nothing changed: every
request should get a 304), **tick** (one new item at the top of every feed).
newsmon runs ``newsmon run --once`` with a configuration of N sources, the
shipped rules plus 100 generated ones, and an email channel; rss2email (its own
virtual environment, made here on first use) runs ``r2e run`` and mails every
new item. Both mail to the same local SMTP sink. Wall time, CPU time and peak
RSS come from ``os.wait4`` on each tool's process (started by ``launch.py``),
response counts from the benchmark's feed server. The passes alternate between
the tools so that load from other work on the machine falls on both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import venv
from dataclasses import dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from corpus import Corpus, generated_rules, utc_now  # noqa: E402
from servers import FeedServer, MailSink  # noqa: E402

PEER_VENV = HERE / ".venv-rss2email"
PEER_VERSION = "rss2email==3.14"
PASSES = ("cold", "steady", "tick")


@dataclass(frozen=True)
class Measure:
    tool: str
    phase: str
    wall: float
    cpu: float
    peak_rss_mb: float
    statuses: dict[int, int]
    mails: int
    exit_code: int

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def share_304(self) -> float:
        return self.statuses.get(304, 0) / self.requests if self.requests else 0.0


class Launcher:
    """The small process that starts every pass (see ``launch.py``: why it exists)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen([sys.executable, str(HERE / "launch.py")],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True)

    def run(self, argv: list[str], log: Path) -> dict[str, float]:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")
        self._process.stdin.flush()
        answer: dict[str, float] = json.loads(self._process.stdout.readline())
        return answer

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait()


def measured(launcher: Launcher, tool: str, phase: str, argv: list[str], server: FeedServer,
             sink: MailSink, log: Path) -> Measure:
    """Run one pass in a child process; its own rusage (not the other tool's) from wait4."""
    server.reset_counts()
    mails_before = sink.messages
    with log.open("ab") as out:
        out.write(f"\n=== {tool} {phase}: {' '.join(argv)}\n".encode())
    answer = launcher.run(argv, log)
    time.sleep(0.2)  # let the sink count the last message
    return Measure(tool, phase, answer["wall"], answer["cpu"], answer["peak_rss_kb"] / 1024,
                   dict(server.statuses), sink.messages - mails_before, int(answer["exit"]))


def daemon_cycle(launcher: Launcher, work: Path, server: FeedServer, sink: MailSink,
                 log: Path) -> Measure:
    """A steady cycle of the running daemon, its start-up excluded (``cycle.py``)."""
    out = work / "cycle.json"
    measure = measured(launcher, "newsmon daemon cycle", "steady",
                       [str(ROOT / ".venv" / "bin" / "python"), str(HERE / "cycle.py"),
                        str(work / "newsmon.toml"), str(out)], server, sink, log)
    if measure.exit_code != 0 or not out.exists():
        return measure  # its exit code marks the run as failed; the log says why
    cycle = json.loads(out.read_text())
    return replace(measure, wall=cycle["cycle_wall"], cpu=cycle["cycle_cpu"])


def daemon_tick_cycle(launcher: Launcher, work: Path, server: FeedServer, sink: MailSink,
                      corpus: Corpus, log: Path) -> Measure:
    """The tick as a running daemon meets it (``cycle.py --after-cold``): a daemon on a
    database of its own polls the feeds as they are (its cold pass), then the feeds
    tick (here, for every pass after) and its next cycle is timed."""
    config = work / "daemon.toml"
    config.write_text((work / "newsmon.toml").read_text(encoding="utf-8").replace(
        str(work / "newsmon.db"), str(work / "daemon.db")), encoding="utf-8")
    out, ready, go = work / "tick-cycle.json", work / "daemon.ready", work / "daemon.go"
    argv = [str(ROOT / ".venv" / "bin" / "python"), str(HERE / "cycle.py"), str(config),
            str(out), "--after-cold", str(ready), str(go)]
    answer: list[dict[str, float]] = []
    with log.open("ab") as text:
        text.write(f"\n=== newsmon daemon tick cycle: {' '.join(argv)}\n".encode())
    running = threading.Thread(target=lambda: answer.append(launcher.run(argv, log)))
    running.start()
    while not ready.exists() and running.is_alive():
        time.sleep(0.05)
    corpus.tick(utc_now())
    server.publish(corpus)
    server.reset_counts()
    mails_before = sink.messages
    go.touch()
    running.join()
    time.sleep(0.2)  # let the sink count the last message
    measure = Measure("newsmon daemon cycle", "tick", answer[0]["wall"], answer[0]["cpu"],
                      answer[0]["peak_rss_kb"] / 1024, dict(server.statuses),
                      sink.messages - mails_before, int(answer[0]["exit"]))
    if measure.exit_code != 0 or not out.exists():
        return measure  # its exit code marks the run as failed; the log says why
    cycle = json.loads(out.read_text())
    return replace(measure, wall=cycle["cycle_wall"], cpu=cycle["cycle_cpu"])


def ensure_peer() -> Path:
    r2e = PEER_VENV / "bin" / "r2e"
    if not r2e.exists():
        print(f"making {PEER_VENV} with {PEER_VERSION} ...", flush=True)
        venv.create(PEER_VENV, with_pip=True)
        subprocess.run([str(PEER_VENV / "bin" / "pip"), "install", "-q", PEER_VERSION],
                       check=True)
    return r2e


def newsmon_config(work: Path, server: FeedServer, sink: MailSink, corpus: Corpus) -> Path:
    rules = work / "rules"
    rules.mkdir()
    for shipped in sorted((ROOT / "rules").glob("*.yaml")):
        shutil.copy(shipped, rules / shipped.name)
    (rules / "generated.yaml").write_text(generated_rules(100), encoding="utf-8")
    lines = [
        "[storage]", f'url = "sqlite:///{work / "newsmon.db"}"',
        "[rules]", 'paths = ["rules"]',
        "[defaults]", 'interval = "15m"', 'channels = ["desk-email"]',
        "[fetch]", 'user_agent = "newsmon-benchmark (+http://bench.invalid/)"',
        "[channels.desk-email]", 'type = "email"', 'host = "127.0.0.1"', f"port = {sink.port}",
        'security = "none"', 'sender = "newsmon@bench.invalid"', 'to = ["desk@bench.invalid"]',
    ]
    for feed in corpus.feeds:
        lines += ["[[sources]]", f'name = "{feed.name}"', f'url = "{server.url(feed)}"']
    config = work / "newsmon.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def peer_config(work: Path, server: FeedServer, sink: MailSink, corpus: Corpus) -> Path:
    lines = [
        "[DEFAULT]", "to = desk@bench.invalid", "from = r2e@bench.invalid",
        "email-protocol = smtp", "smtp-server = 127.0.0.1", f"smtp-port = {sink.port}",
        "smtp-ssl = False", "smtp-auth = False", "verbose = warning",
    ]
    for feed in corpus.feeds:
        lines += [f"[feed.{feed.name}]", f"url = {server.url(feed)}"]
    config = work / "rss2email.cfg"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def stored_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            "articles": conn.execute("SELECT count(*) FROM articles").fetchone()[0],
            "stories": conn.execute("SELECT count(DISTINCT story_id) FROM articles").fetchone()[0],
            "hits": conn.execute("SELECT count(*) FROM hits").fetchone()[0],
            "alerts": conn.execute("SELECT count(*) FROM outbox").fetchone()[0],
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000, help="number of feeds (default 1000)")
    parser.add_argument("--hosts", type=int, default=100,
                        help="loopback addresses the feeds are spread over (default 100)")
    parser.add_argument("--skip-peer", action="store_true", help="run newsmon only")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, help="also write the measures here")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record newsmon with py-spy (all threads), one PHASE.txt of"
                        " collapsed stacks per pass in DIR")
    args = parser.parse_args()

    launcher = Launcher()  # first, while this process is small
    hosts = [f"127.0.0.{2 + i}" for i in range(min(args.hosts, args.feeds, 250))]
    work = Path(tempfile.mkdtemp(prefix="newsmon-pollbench-"))
    print(f"work folder {work}; load before: {os.getloadavg()}", flush=True)
    started = time.perf_counter()
    corpus = Corpus(args.feeds, hosts, utc_now())
    print(f"{args.feeds} feeds generated in {time.perf_counter() - started:.1f}s", flush=True)
    server = FeedServer(hosts)
    sink = MailSink()
    server.start()
    sink.start()
    server.publish(corpus)

    newsmon = [str(ROOT / ".venv" / "bin" / "newsmon"), "run", "--once",
               "--config", str(newsmon_config(work, server, sink, corpus))]
    peer = None
    if not args.skip_peer:
        r2e = ensure_peer()
        data = work / "rss2email.json"
        peer = [str(r2e), "-c", str(peer_config(work, server, sink, corpus)), "-d", str(data),
                "run"]
    log = work / "output.log"
    results: list[Measure] = []
    loads: list[float] = []
    try:
        for phase in PASSES:
            loads.append(os.getloadavg()[0])
            if phase == "tick":  # ticks the feeds for this pass
                results.append(daemon_tick_cycle(launcher, work, server, sink, corpus, log))
                print_cycle(results[-1])
            for tool, argv in (("newsmon", newsmon), ("rss2email", peer)):
                if argv is None:
                    continue
                if tool == "newsmon" and args.profile:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    argv = [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--format", "raw",
                            "--rate", "200", "--threads", "-o", str(args.profile / f"{phase}.txt"),
                            "--", *argv]
                result = measured(launcher, tool, phase, argv, server, sink, log)
                results.append(result)
                print(f"{tool:9} {phase:6} {result.wall:7.2f}s wall {result.cpu:7.2f}s cpu "
                      f"{result.peak_rss_mb:6.0f} MB  responses {result.statuses}  "
                      f"mails {result.mails}  exit {result.exit_code}", flush=True)
            if phase == "steady":
                results.append(daemon_cycle(launcher, work, server, sink, log))
                print_cycle(results[-1])
            else:
                print(f"          newsmon database: {stored_counts(work / 'newsmon.db')}",
                      flush=True)
    finally:
        launcher.close()
        server.stop()
        sink.stop()
    print(f"load average (1 min) at each pass: {loads}; after: {os.getloadavg()}")
    report(results, args.feeds)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)
    return 0 if all(r.exit_code == 0 for r in results) else 1


def print_cycle(r: Measure) -> None:
    print(f"{'daemon':9} {r.phase:6} {r.wall:7.2f}s wall {r.cpu:7.2f}s cpu (one run_once in a"
          f" running daemon)  responses {r.statuses}  mails {r.mails}  exit {r.exit_code}",
          flush=True)


def report(results: list[Measure], feeds: int) -> None:
    by = {(r.tool, r.phase): r for r in results}
    print("\n| pass | tool | wall (s) | CPU (s) | peak RSS (MB) | responses | 304 | mails |"
          " newsmon wall / rss2email wall |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for phase in PASSES:
        ours, peer = by.get(("newsmon", phase)), by.get(("rss2email", phase))
        cycle = by.get(("newsmon daemon cycle", phase))
        for r in (ours, cycle, peer):
            if r is None:
                continue
            ratio = f"**1/{peer.wall / r.wall:.1f}**" if peer and r is not peer else ""
            share = f"{r.statuses.get(304, 0)} ({100 * r.share_304:.1f}%)"
            print(f"| {phase} | {r.tool} | {r.wall:.2f} | {r.cpu:.2f} | {r.peak_rss_mb:.0f} "
                  f"| {r.requests} | {share} | {r.mails} | {ratio} |")
    print(f"({feeds} feeds)")


if __name__ == "__main__":
    raise SystemExit(main())
