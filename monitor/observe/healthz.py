"""``/healthz``: is this node doing its job? Three checks, each saying why it failed.

- the scheduler is running (its jobs will fire);
- the store answers (a round trip to the database, under a deadline);
- a poll finished recently: within twice the longest source interval plus the
  fetch deadline (a hung event loop or a stuck job shows here).

Pure: the daemon gathers the facts, ``assess`` judges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class HealthFacts:
    scheduler_running: bool
    store_error: str | None  # None: the store answered
    running_since: datetime | None  # when the scheduler started
    last_poll: datetime | None  # when this node last finished a poll
    stale_after: timedelta | None  # None: no sources to poll
    now: datetime


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return 200 if self.healthy else 503


def assess(facts: HealthFacts) -> Health:
    problems: list[str] = []
    if not facts.scheduler_running:
        problems.append("the scheduler is not running")
    if facts.store_error is not None:
        problems.append(f"the store does not answer: {facts.store_error}")
    since = facts.last_poll or facts.running_since
    age = (facts.now - since).total_seconds() if since is not None else None
    if facts.stale_after is not None and age is not None and (
        age > facts.stale_after.total_seconds()
    ):
        limit = int(facts.stale_after.total_seconds())
        problems.append(f"the last poll finished {int(age)}s ago (more than {limit}s)"
                        if facts.last_poll else
                        f"no poll has finished in the {int(age)}s since start (more than "
                        f"{limit}s)")
    body: dict[str, Any] = {
        "status": "ok" if not problems else "unhealthy",
        "problems": problems,
        "scheduler": {"running": facts.scheduler_running},
        "store": {"reachable": facts.store_error is None, "error": facts.store_error},
        "last_poll": {
            "at": facts.last_poll.isoformat() if facts.last_poll else None,
            "age_seconds": round(age, 3) if facts.last_poll and age is not None else None,
            "stale_after_seconds": (facts.stale_after.total_seconds()
                                    if facts.stale_after is not None else None),
        },
    }
    return Health(not problems, body)
