"""The daemon's Prometheus metrics, on a registry the daemon owns.

Counters move as the pipeline reports what it did (``observe_poll``) and as the
deliverer reports each send (the ``DeliveryObserver`` methods); the outbox depth
is read from the store at scrape time (``set_outbox``), so it is the truth of the
shared database, not of this node's memory. Its own registry, not the global
one: two daemons in one process (the tests) never share a counter.

No I/O here: the endpoint renders ``render()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from monitor.pipeline import PollReport
from monitor.store import OutboxCount

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
SEND_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DELAY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def poll_outcome(report: PollReport) -> str:
    """A closed set, used as a label: ok, not_modified, error, backoff."""
    if report.error:
        return "error"
    if report.skipped_backoff:
        return "backoff"
    return "not_modified" if report.not_modified else "ok"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("newsmon_polls", "Polls of a source, by outcome "
                             "(ok, not_modified, error, backoff)", ["source", "outcome"],
                             registry=r)
        self.fetch_errors = Counter("newsmon_fetch_errors", "Polls of a source that failed "
                                    "(fetch or parse)", ["source"], registry=r)
        self.new_articles = Counter("newsmon_new_articles", "New articles stored",
                                    ["source"], registry=r)
        self.rule_hits = Counter("newsmon_rule_hits", "New articles a rule matched",
                                 ["rule"], registry=r)
        self.alerts_sent = Counter("newsmon_alerts_sent", "Alerts delivered, alone "
                                   "(via=message) or inside a digest (via=digest)",
                                   ["channel", "via"], registry=r)
        self.alerts_failed = Counter("newsmon_alerts_failed", "Alerts given up on after "
                                     "delivery.max_age of failed attempts", ["channel"],
                                     registry=r)
        self.send_errors = Counter("newsmon_send_errors", "Failed send attempts, by failure "
                                   "kind (most are retried)", ["channel", "kind"], registry=r)
        self.outbox = Gauge("newsmon_outbox_alerts", "Outbox rows not (yet) sent, per channel "
                            "and status, read from the store at scrape time",
                            ["channel", "status"], registry=r)
        self.store_up = Gauge("newsmon_store_up", "1 if the store answered at the last scrape",
                              registry=r)
        self.last_poll = Gauge("newsmon_last_poll_timestamp_seconds",
                               "When this node last finished a poll (Unix time)", registry=r)
        self.poll_seconds = Histogram("newsmon_poll_duration_seconds", "Time to poll a source "
                                      "(fetch, parse, match, store)", ["source"],
                                      buckets=POLL_BUCKETS, registry=r)
        self.send_seconds = Histogram("newsmon_delivery_duration_seconds", "Time to send one "
                                      "alert to its channel", ["channel"],
                                      buckets=SEND_BUCKETS, registry=r)
        self.alert_delay = Histogram("newsmon_alert_delay_seconds", "From an alert being "
                                     "planned to its being sent", ["channel"],
                                     buckets=DELAY_BUCKETS, registry=r)

    def declare(self, sources: Iterable[str], rules: Iterable[str],
                channels: Iterable[str]) -> None:
        """Start every known series at zero, so a rate exists before the first event
        and a rule that never matches shows as 0, not as nothing."""
        for source in sources:
            self.fetch_errors.labels(source)
            self.new_articles.labels(source)
        for rule in rules:
            self.rule_hits.labels(rule)
        for channel in channels:
            self.alerts_sent.labels(channel, "message")
            self.alerts_failed.labels(channel)

    # --- the pipeline --------------------------------------------------------------------

    def observe_poll(self, report: PollReport, seconds: float, finished: datetime) -> None:
        outcome = poll_outcome(report)
        self.polls.labels(report.source, outcome).inc()
        self.last_poll.set(finished.timestamp())
        if outcome == "backoff":
            return
        self.poll_seconds.labels(report.source).observe(seconds)
        if outcome == "error":
            self.fetch_errors.labels(report.source).inc()
        self.new_articles.labels(report.source).inc(report.new)
        for rule in report.hits:
            self.rule_hits.labels(rule).inc()

    # --- delivery (monitor.deliver.DeliveryObserver) -------------------------------------

    def sent(self, channel: str, seconds: float, delay: float) -> None:
        self.alerts_sent.labels(channel, "message").inc()
        self.send_seconds.labels(channel).observe(seconds)
        self.alert_delay.labels(channel).observe(max(0.0, delay))

    def send_failed(self, channel: str, kind: str) -> None:
        self.send_errors.labels(channel, kind).inc()

    def gave_up(self, channel: str) -> None:
        self.alerts_failed.labels(channel).inc()

    def digested(self, channel: str, alerts: int) -> None:
        self.alerts_sent.labels(channel, "digest").inc(alerts)

    # --- scrape time ---------------------------------------------------------------------

    def set_outbox(self, counts: Iterable[OutboxCount] | None) -> None:
        """The outbox as the store has it now; ``None``: the store did not answer."""
        self.outbox.clear()
        if counts is None:
            self.store_up.set(0)
            return
        self.store_up.set(1)
        for count in counts:
            self.outbox.labels(count.channel, count.status).set(count.count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
