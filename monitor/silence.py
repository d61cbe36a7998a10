"""Stage *silence* (between plan and outbox): which planned alerts a silence covers.

A silence mutes one rule, one source or one channel for a while. An alert planned
while a silence covers it is still filed, with the silence's id, so it never
vanishes without a trace:

- ``digest``: it waits for the channel's next digest; on a channel without a
  digest it waits until the silence ends, then is sent.
- ``drop``: it is recorded as ``silenced`` and never sent. It does not count as
  the story's alert, so the story can still alert once the silence is over.

A source silence covers every alert about the source's articles (they are still
stored and matched: their hits count in ``newsmon stats``) and the source's own
health alerts.

Pure: no I/O. The rows live in ``store/silences.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from monitor.records import Alert

Target = Literal["rule", "source", "channel"]
Action = Literal["digest", "drop"]
TARGETS: tuple[Target, ...] = ("rule", "source", "channel")
ACTIONS: tuple[Action, ...] = ("digest", "drop")


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    target: Target
    name: str
    action: Action
    reason: str
    created_by: str
    starts_at: datetime
    ends_at: datetime
    removed_at: datetime | None = None

    @property
    def until(self) -> datetime:
        """When it stops (or stopped) muting: its end, or when it was removed."""
        return self.ends_at if self.removed_at is None else min(self.ends_at, self.removed_at)

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.until

    def covers(self, alert: Alert) -> bool:
        if self.target == "rule":
            return alert.rule_id == self.name
        if self.target == "source":
            return alert.source == self.name
        return alert.channel == self.name

    def describe(self) -> str:
        """``silence 3 (rule sanctions-package, digest until 2026-11-26 16:00 UTC)``"""
        return (f"silence {self.id} ({self.target} {self.name}, {self.action} until "
                f"{self.until.strftime('%Y-%m-%d %H:%M')} UTC)")


def silencing(silences: Sequence[Silence], alert: Alert, now: datetime) -> Silence | None:
    """The silence that covers ``alert`` now, if any.

    When several do, one that keeps the alert for a digest wins over one that drops
    it (the milder choice), then the oldest.
    """
    covering = [s for s in silences if s.active(now) and s.covers(alert)]
    if not covering:
        return None
    return min(covering, key=lambda s: (s.action != "digest", s.id))
