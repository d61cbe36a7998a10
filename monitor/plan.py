"""Stage *plan*: hits -> alerts, one per channel that should hear of them.

Routing: a rule's ``notify`` channels, else the configured default channels;
a channel's ``min_severity`` filters. Articles older than ``max_age`` (on their
publication time) are stored and matched but never alerted, so adding a source
does not flood the channels with its archive. Deduplication is not done here:
each alert carries its dedupe key (story id, or article identity for
``scope: article``) and its rule's dedupe window, and the outbox's unique
constraint decides; when an alert for the key exists already (planned less than
a window ago), the store turns the new one into a follow-up according to the
channel's ``follow_ups`` policy carried here.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from monitor.channel_settings import ChannelSettings
from monitor.records import Alert, Article, Hit, Span
from monitor.rules.model import Rule

SNIPPET_CHARS = 240


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    """An alert with what the store needs to file it."""

    alert: Alert
    dedupe_key: str
    follow_ups: Literal["thread", "digest", "none"]  # if the key is taken already
    in_digest: bool  # the channel has a digest: list this alert in it
    hold: bool  # digest only: the alert waits for the digest instead of being sent
    window: timedelta | None = None  # the key is taken this long after its alert; None: ever


class Planner:
    def __init__(
        self,
        rules: Mapping[str, Rule],
        channels: Mapping[str, ChannelSettings],
        default_channels: Sequence[str],
    ) -> None:
        self._rules = rules
        self._channels = channels
        self._defaults = tuple(default_channels)

    def routes(self, rule: Rule) -> tuple[str, ...]:
        return rule.notify or self._defaults

    def plan(
        self,
        article: Article,
        story_id: str,
        hits: Sequence[Hit],
        now: datetime,
        max_age: timedelta | None,
    ) -> tuple[PlannedAlert, ...]:
        if max_age is not None and article.when < now - max_age:
            return ()
        planned: list[PlannedAlert] = []
        for hit in hits:
            rule = self._rules[hit.rule_id]
            key = story_id if rule.dedupe.scope == "story" else article.identity
            snippet = make_snippet(article, hit.spans)
            terms = tuple(dict.fromkeys(s.text for s in hit.spans))
            for channel in self.routes(rule):
                settings = self._channels.get(channel)
                if settings is None or not rule.severity.at_least(settings.min_severity):
                    continue
                alert = Alert(
                    rule_id=rule.id,
                    rule_title=rule.title,
                    severity=rule.severity,
                    channel=channel,
                    story_id=story_id,
                    article_title=article.title,
                    article_url=article.url,
                    source=article.source,
                    published=article.published,
                    snippet=snippet,
                    matched_terms=terms,
                    spans=hit.spans,
                    article_identity=article.identity,
                )
                has_digest = settings.digest is not None
                planned.append(PlannedAlert(alert, key, settings.follow_ups, has_digest,
                                            hold=has_digest and not settings.immediate,
                                            window=rule.dedupe.window))
        return tuple(planned)


def make_snippet(article: Article, spans: Sequence[Span]) -> str:
    """A window of body text around the first match outside the title (or the lead)."""
    body_spans = [s for s in spans if s.field in ("summary", "content")]
    if not body_spans:
        lead = article.summary or article.content
        return _clip(" ".join(lead.split()), 0, SNIPPET_CHARS)
    first = min(body_spans, key=lambda s: (s.field != "summary", s.start))
    text = article.summary if first.field == "summary" else article.content
    half = (SNIPPET_CHARS - (first.end - first.start)) // 2
    return _clip(text, max(0, first.start - half), first.end + half)


def _clip(text: str, start: int, end: int) -> str:
    start = max(0, start)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    piece = " ".join(text[start:end].split())
    return ("…" if start > 0 else "") + piece + ("…" if end < len(text) else "")
