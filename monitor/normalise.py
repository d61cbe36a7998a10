"""Stage *normalise*: ``FeedEntry`` -> ``Article``.

Markup becomes plain text (what a reader sees, so rules match what people read
and spans point into text we can show); the link becomes a canonical URL (no
tracking parameters, no fragment, lower-case host, no default port; only http(s)
links survive: ``javascript:`` and ``data:`` are dropped); each article gets a
stable identity so the store can recognise it next time (``identity``: by the
source's guid, else the canonical URL, else a fingerprint of the text, or as the
source's ``identity`` setting says).

Pure functions: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.identity import IdentityMode, article_identity, content_fingerprint
from monitor.records import Article, FeedEntry

TRACKING_PARAMETERS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_hsenc",
     "_hsmi", "mkt_tok", "ocid", "cmpid", "icid"}
)
BLOCK_TAGS = frozenset(
    {"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
     "tr", "table", "section", "article", "header", "footer", "pre", "hr", "figure"}
)
INVISIBLE_TAGS = frozenset({"script", "style", "template", "noscript", "iframe", "object"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
MARKUP_HINT = re.compile(r"<[a-zA-Z/!]|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);")


def normalise_entry(
    source: str, entry: FeedEntry, fetched: datetime, identity: IdentityMode = "guid"
) -> Article:
    title = one_line(html_to_text(entry.title))
    summary = html_to_text(entry.summary)
    content = html_to_text(entry.content)
    return _article(source, entry, fetched, identity, content_fingerprint(title, summary, content),
                    title, summary, content, one_line(html_to_text(entry.author)))


def normalise_keys(
    source: str, entry: FeedEntry, fetched: datetime, identity: IdentityMode,
    fingerprint: str,
) -> Article:
    """The entry as ``normalise_entry`` makes it, given the fingerprint of its text,
    without the text: identity, fingerprint, guid, URL and times are the same; title,
    summary, content and author are empty. Enough to recognise an entry as a stored
    article (``identity.recognise``), and for nothing else (``entry_texts``)."""
    return _article(source, entry, fetched, identity, fingerprint, "", "", "", "")


def _article(
    source: str, entry: FeedEntry, fetched: datetime, identity: IdentityMode,
    fingerprint: str, title: str, summary: str, content: str, author: str,
) -> Article:
    url = canonical_url(entry.link) if entry.link else None
    # A guid that is just the link says nothing more than the link (and one parser
    # fills it in from the link where the other leaves it empty).
    guid = entry.guid if entry.guid and entry.guid != entry.link else None
    return Article(
        source=source,
        identity=article_identity(identity, source, guid, url, fingerprint),
        fingerprint=fingerprint,
        guid=guid,
        url=url,
        title=title,
        summary=summary,
        content=content,
        author=author,
        published=plausible_time(entry.published, fetched),
        fetched=fetched,
        language=primary_language(entry.language),
    )


def primary_language(tag: str | None) -> str | None:
    """The language a rule's ``languages`` compares: a tag's primary subtag, lower-cased
    (a feed's ``en-US`` is ``en``); None when there is none."""
    return (tag or "").split("-")[0].lower() or None


def with_page_text(article: Article, text: str, canonical: str | None) -> Article:
    """The article once its page has been read (``full_text``).

    The page's main text becomes the content when it says more than the feed did;
    the page's canonical link becomes the URL (``with_canonical_url``: the identity
    and the fingerprint stay the feed item's). ``identity.recognise`` then finds an
    article reached by another link, or carried by another source, by that URL.
    """
    if len(text) > len(article.content):
        article = replace(article, content=text)
    return with_canonical_url(article, canonical) if canonical else article


FUTURE_TOLERANCE = timedelta(hours=1)


def plausible_time(published: datetime | None, fetched: datetime) -> datetime | None:
    """A publication time in the future (a wrong time zone, a scheduled post) is not
    believed: the article counts as published when it was fetched."""
    if published is not None and published > fetched + FUTURE_TOLERANCE:
        return fetched
    return published


# A feed lists the same links poll after poll: a changed feed's known entries were
# most of the canonical URLs worked out (``urlsplit``, ``parse_qsl`` and ``urlencode``,
# about 12 us a link). The URL depends on the link alone, so it is remembered by the
# link; 65,536 links (3,000 feeds of 20 items) of 100 characters take about 20 MB.
CANONICAL_URLS_KEPT = 1 << 16


@lru_cache(maxsize=CANONICAL_URLS_KEPT)
def canonical_url(link: str) -> str | None:
    """The link without what varies between shares of one article; None if not http(s)."""
    try:
        parts = urlsplit(link.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMETERS
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def with_canonical_url(article: Article, link: str) -> Article:
    """The article as known by the canonical URL its page declares (``rel=canonical``).

    Only the URL changes: the identity and the fingerprint stay those of the feed's
    item, so the next fetch of the feed, which does not read the page, still finds
    the article; another feed linking to that canonical URL finds it as the same
    article (``identity.recognise``). A link that is not http(s) changes nothing.
    """
    url = canonical_url(link)
    return replace(article, url=url) if url else article


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in INVISIBLE_TAGS:
            self._hidden += 1
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in INVISIBLE_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            # In HTML a line break inside text is just a space; tags make paragraphs.
            self.parts.append(data.replace("\r", " ").replace("\n", " "))


def html_to_text(value: str) -> str:
    """Plain text of an HTML fragment (or of plain text): paragraphs kept, whitespace folded."""
    if not value:
        return ""
    if MARKUP_HINT.search(value):
        extractor = _TextExtractor()
        extractor.feed(value)
        extractor.close()
        value = "".join(extractor.parts)  # convert_charrefs already decoded entities
    return plain_text(value)


def plain_text(value: str) -> str:
    """Plain text cleaned for matching and display: control characters gone, Unicode NFC,
    whitespace folded within each paragraph, empty paragraphs dropped."""
    value = unicodedata.normalize("NFC", _CONTROL.sub(" ", value))
    paragraphs = (" ".join(p.split()) for p in value.split("\n"))
    return "\n".join(p for p in paragraphs if p)


def one_line(value: str) -> str:
    return " ".join(value.split())
