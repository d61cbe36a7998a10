"""The typed, immutable records that flow between pipeline stages.

    fetch  -> FetchResult
    parse  -> FeedEntry            (what a feed said, nothing more)
    normalise -> Article           (our canonical view of one news item)
    match  -> Hit (with Spans)     (a rule that matched an article, and where)
    plan   -> Alert                (one message-to-be for one channel)
    outbox -> Delivery             (an Alert claimed for sending)

No stage mutates a record it received; each builds new ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from monitor.severity import Severity


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A fetched body, or ``not_modified`` when the source answered 304."""

    url: str
    body: bytes
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One item as a feed gave it. Text fields are HTML (a feed's plain text arrives
    escaped, so ``<!channel>`` in a plain-text title stays text); nothing is trusted."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str
    author: str
    published: datetime | None
    language: str | None

    def __reduce__(self) -> tuple[Any, ...]:
        # Parsed entries come back from a worker process as pickles: a constructor call
        # with positional fields unpickles in half the time of a dataclass's state dict.
        return FeedEntry, tuple(getattr(self, name) for name in _FEED_ENTRY_FIELDS)


_FEED_ENTRY_FIELDS = tuple(f.name for f in fields(FeedEntry))


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    entries: tuple[FeedEntry, ...]
    skipped: int = 0  # entries beyond the per-fetch cap

    def __reduce__(self) -> tuple[Any, ...]:
        return ParsedFeed, tuple(getattr(self, name) for name in _PARSED_FEED_FIELDS)


_PARSED_FEED_FIELDS = tuple(f.name for f in fields(ParsedFeed))


@dataclass(frozen=True, slots=True)
class Article:
    """One news item, normalised. Text fields are plain text (no markup)."""

    source: str
    identity: str  # stable key: the same item always gets the same identity
    guid: str | None
    url: str | None  # canonical: no tracking parameters, no fragment
    title: str
    summary: str
    content: str
    author: str
    published: datetime | None
    fetched: datetime
    language: str | None
    # The item's title and text as its feed gave them, hashed (``identity``): kept
    # when a later stage replaces the text (full text), so the next fetch of the
    # same item is recognised. "" when unknown: then it matches nothing.
    fingerprint: str = ""

    @property
    def when(self) -> datetime:
        """Publication time, or fetch time when the item had none."""
        return self.published or self.fetched


@dataclass(frozen=True, slots=True)
class Span:
    """Where a term matched: ``start``/``end`` index the article's field text."""

    field: str
    start: int
    end: int
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "start": self.start, "end": self.end, "text": self.text}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        return cls(str(data["field"]), int(data["start"]), int(data["end"]), str(data["text"]))


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule matched an article."""

    rule_id: str
    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert for one channel: everything a channel needs to render it.

    It is stored as JSON in the outbox, so delivery never needs the rules or the
    article rows again (a rule may change or vanish before the alert is sent).
    ``kind`` is "alert" for the first article of a story, "follow_up" for a later
    article of the same story (a thread reply, a digest line).
    """

    rule_id: str
    rule_title: str
    severity: Severity
    channel: str
    story_id: str
    article_title: str
    article_url: str | None
    source: str
    published: datetime | None
    snippet: str
    matched_terms: tuple[str, ...]
    spans: tuple[Span, ...] = field(default=())
    kind: Literal["alert", "follow_up"] = "alert"
    article_identity: str = ""

    @property
    def key(self) -> str:
        """Stable identity of this message: a resend is recognisably the same message
        (and a story's next alert, a dedupe window later, is another message)."""
        raw = "\0".join((self.kind, self.rule_id, self.story_id, self.channel,
                         self.article_identity))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "article_identity": self.article_identity,
            "rule_id": self.rule_id,
            "rule_title": self.rule_title,
            "severity": self.severity.value,
            "channel": self.channel,
            "story_id": self.story_id,
            "article_title": self.article_title,
            "article_url": self.article_url,
            "source": self.source,
            "published": self.published.isoformat() if self.published else None,
            "snippet": self.snippet,
            "matched_terms": list(self.matched_terms),
            "spans": [s.to_json() for s in self.spans],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alert:
        published = data.get("published")
        return cls(
            rule_id=str(data["rule_id"]),
            rule_title=str(data["rule_title"]),
            severity=Severity(data["severity"]),
            channel=str(data["channel"]),
            story_id=str(data["story_id"]),
            article_title=str(data["article_title"]),
            article_url=data.get("article_url"),
            source=str(data["source"]),
            published=datetime.fromisoformat(published) if published else None,
            snippet=str(data.get("snippet", "")),
            matched_terms=tuple(data.get("matched_terms", ())),
            spans=tuple(Span.from_json(s) for s in data.get("spans", ())),
            kind="follow_up" if data.get("kind") == "follow_up" else "alert",
            article_identity=str(data.get("article_identity", "")),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row claimed for sending. ``thread`` is the channel's id of the
    message a follow-up replies to (a Slack ``ts``, an email Message-ID), once known."""

    outbox_id: int
    alert: Alert
    attempts: int
    created: datetime
    thread: str | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    """Alerts of one channel since its last digest, sent as one message grouped by rule."""

    channel: str
    alerts: tuple[Alert, ...]
    since: datetime | None
    until: datetime

    def by_rule(self) -> list[tuple[str, list[Alert]]]:
        groups: dict[str, list[Alert]] = {}
        for alert in self.alerts:
            groups.setdefault(alert.rule_id, []).append(alert)
        return list(groups.items())
