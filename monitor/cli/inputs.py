"""Articles for `rules test`: JSON Lines, a feed file, or a plain text file.

Feeds are parsed and normalised as the pipeline would, so spans index the text
the daemon matches. JSON Lines text fields are matched with their markup removed,
like feed text, and spans are mapped back to the raw strings of the input line
(``TestArticle.raw_span``). Plain text is matched as given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from monitor.cli.markup import PlainText, without_markup
from monitor.errors import NewsmonError, SourceError
from monitor.normalise import normalise_entry, primary_language
from monitor.parse import parse_feed
from monitor.records import Article, Span


class InputError(NewsmonError):
    """An INPUT file that cannot be read; names the file and line."""


@dataclass(frozen=True, slots=True)
class TestArticle:
    id: str
    article: Article
    marked: dict[str, PlainText] = field(default_factory=dict)  # fields that held markup

    def raw_span(self, span: Span) -> Span:
        """The span as offsets into the input's raw field text."""
        plain = self.marked.get(span.field)
        if plain is None:
            return span
        start, end = plain.raw_span(span.start, span.end)
        return Span(span.field, start, end, plain.raw[start:end])


JSON_FIELDS = {"id", "title", "summary", "content", "link", "published", "source", "author",
               "language"}
MARKUP_FIELDS = ("title", "summary", "content", "author")  # text a feed may give as HTML


def read_articles(path: Path) -> list[TestArticle]:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if path.suffix in (".jsonl", ".ndjson") or (head.startswith(b"{") and not _is_json_feed(head)):
        return _json_lines(path, body)
    if head.startswith(b"<") or _is_json_feed(head):
        return _feed(path, body)
    return [_plain_text(path, body)]


def _is_json_feed(head: bytes) -> bool:
    return head.startswith(b"{") and b"jsonfeed.org/version" in head[:4096]


def _json_lines(path: Path, body: bytes) -> list[TestArticle]:
    out: list[TestArticle] = []
    now = datetime.now(UTC)
    for number, line in enumerate(body.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}:{exc.colno}: invalid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}:{number}:1: expected a JSON object")
        unknown = set(data) - JSON_FIELDS
        if unknown:
            raise InputError(f"{path}:{number}:1: unknown keys {sorted(unknown)}"
                             f" (allowed: {', '.join(sorted(JSON_FIELDS))})")
        if "id" not in data:
            raise InputError(f"{path}:{number}:1: missing 'id'")
        text = {k: data.get(k) for k in JSON_FIELDS}
        for key, value in text.items():
            if value is not None and not isinstance(value, str) and key != "id":
                raise InputError(f"{path}:{number}:1: {key!r} must be a string")
        plain = {k: without_markup(str(text[k])) for k in MARKUP_FIELDS if text[k]}
        marked = {k: p for k, p in plain.items() if p.origin is not None}
        published = None
        if text["published"]:
            try:
                published = datetime.fromisoformat(str(text["published"]).replace("Z", "+00:00"))
            except ValueError:
                raise InputError(f"{path}:{number}:1: 'published' is not an ISO 8601 time"
                                 ) from None
            if published.tzinfo is None:
                published = published.replace(tzinfo=UTC)
        article = Article(
            source=str(text["source"] or ""),
            identity=str(data["id"]),
            guid=str(data["id"]),
            url=str(text["link"]) if text["link"] else None,
            title=plain["title"].text if "title" in plain else "",
            summary=plain["summary"].text if "summary" in plain else "",
            content=plain["content"].text if "content" in plain else "",
            author=plain["author"].text if "author" in plain else "",
            published=published,
            fetched=now,
            language=primary_language(text["language"]),
        )
        out.append(TestArticle(str(data["id"]), article, marked))
    return out


def _feed(path: Path, body: bytes) -> list[TestArticle]:
    try:
        feed = parse_feed(path.name, str(path), body, max_items=100_000)
    except SourceError as exc:
        raise InputError(f"{path}: {exc.reason}") from None
    now = datetime.now(UTC)
    out = []
    for index, entry in enumerate(feed.entries, start=1):
        article = normalise_entry("", entry, now)
        out.append(TestArticle(entry.guid or entry.link or f"{path.name}#{index}", article))
    return out


def _plain_text(path: Path, body: bytes) -> TestArticle:
    text = body.decode("utf-8", "replace").lstrip("\ufeff")
    title, _, content = text.partition("\n")
    article = Article(source="", identity=path.name, guid=path.name, url=None, title=title.strip(),
                      summary="", content=content.strip("\n"), author="", published=None,
                      fetched=datetime.now(UTC), language=None)
    return TestArticle(path.name, article)
