"""Stage *health*: a dead feed must not look like a quiet news day.

After every poll, a source's state says whether it is failing, and how long it
has been since it last had a new item. Two conditions raise an operational
alert, once, and a recovery message when they end:

- **failing**: every poll has failed for ``health.failing_after``;
- **silent**: no new item for ``health.silence_factor`` times the usual gap
  between new items: the source's ``expect_every``, or else the gap newsmon
  learns from its history (a moving average, used once ``min_history`` gaps are
  known, so a new source is not judged on one quiet afternoon).

Pure: states in, states and alerts out. The pipeline stores both in the poll's
transaction, so an operational alert is delivered like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from monitor.config import HealthSettings
from monitor.durations import describe
from monitor.plan import PlannedAlert
from monitor.records import Alert
from monitor.severity import Severity
from monitor.store import SourceState

RULE_ID = "newsmon-source-health"
SMOOTHING = 0.3  # weight of the newest gap in the moving average


@dataclass(frozen=True, slots=True)
class HealthEvent:
    kind: Literal["failing", "silent", "recovered"]
    message: str
    key: str  # one alert per event, however often it is assessed


def after_failure(
    before: SourceState, after: SourceState, now: datetime, policy: HealthSettings
) -> tuple[SourceState, HealthEvent | None]:
    since = before.failing_since or now
    state = replace(after, failing_since=since)
    if before.health_alert == "failing" or now - since < policy.failing_after:
        return state, None
    event = HealthEvent(
        "failing",
        f"{before.name} has failed for {describe(now - since)}"
        f" ({after.consecutive_failures} attempts): {after.last_error}",
        f"{before.name}:failing:{since.isoformat()}",
    )
    return replace(state, health_alert="failing"), event


def after_success(
    before: SourceState, after: SourceState, new_items: int, now: datetime,
    expect_every: timedelta | None, policy: HealthSettings,
) -> tuple[SourceState, HealthEvent | None]:
    state = replace(after, failing_since=None)
    if new_items:
        state = _learn_gap(state, before.last_new_at, now)
    if before.health_alert == "failing":
        since = before.failing_since or now
        return replace(state, health_alert=None), HealthEvent(
            "recovered", f"{before.name} works again after failing for {describe(now - since)}",
            f"{before.name}:failing:{since.isoformat()}:recovered")
    if before.health_alert == "silent" and new_items:
        quiet_since = before.last_new_at or now
        return replace(state, health_alert=None), HealthEvent(
            "recovered", f"{before.name} has new items again after {describe(now - quiet_since)}",
            f"{before.name}:silent:{quiet_since.isoformat()}:recovered")
    expected = _expected_gap(state, expect_every, policy)
    last = state.last_new_at
    if (before.health_alert is None and not new_items and expected is not None
            and last is not None and now - last > expected * policy.silence_factor):
        return replace(state, health_alert="silent"), HealthEvent(
            "silent",
            f"{before.name} has had no new item for {describe(now - last)} (usually one every"
            f" {describe(expected)}): is the feed dead, or has it moved?",
            f"{before.name}:silent:{last.isoformat()}")
    return state, None


def _learn_gap(state: SourceState, previous: datetime | None, now: datetime) -> SourceState:
    if previous is None:
        return replace(state, last_new_at=now)
    gap = (now - previous).total_seconds()
    mean = gap if state.gap_mean is None else (
        SMOOTHING * gap + (1 - SMOOTHING) * state.gap_mean)
    return replace(state, last_new_at=now, gap_mean=mean, gaps_seen=state.gaps_seen + 1)


def _expected_gap(state: SourceState, expect_every: timedelta | None,
                  policy: HealthSettings) -> timedelta | None:
    if expect_every is not None:
        return expect_every
    if state.gap_mean is not None and state.gaps_seen >= policy.min_history:
        return timedelta(seconds=state.gap_mean)
    return None


def health_alerts(event: HealthEvent, source: str, url: str, channels: Sequence[str],
                  now: datetime) -> tuple[PlannedAlert, ...]:
    """The event as an alert for each operational channel."""
    title = {"failing": "Source failing", "silent": "Source silent",
             "recovered": "Source recovered"}[event.kind]
    alerts = []
    for channel in channels:
        alert = Alert(
            rule_id=RULE_ID, rule_title=title, severity=Severity.HIGH, channel=channel,
            story_id=f"health:{event.key}"[:200], article_title=event.message,
            article_url=url if url.startswith(("http://", "https://")) else None,
            source=source, published=now, snippet="", matched_terms=(),
        )
        alerts.append(PlannedAlert(alert, alert.story_id, "none", in_digest=False, hold=False))
    return tuple(alerts)
