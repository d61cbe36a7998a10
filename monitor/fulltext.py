"""Stage *full text*: new articles of a ``full_text`` source get their page's main text.

Many feeds carry a headline and twenty words. For a source with ``full_text =
true`` each new article's page is fetched and its main text extracted, so rules
can match the body, and the page's canonical link becomes the article's URL.

Pages are fetched by a ``Fetcher`` of their own (``[full_text]``: size cap,
timeouts, per-host limit; redirects checked, decompression bounded, a total
deadline). A link comes from the feed, not from the user, so it is refused when
it points into a private network, unless the source allows that. Extraction is
CPU work on hostile input: it runs in a worker process under the parse deadline.

A page that cannot be had (an error status, a timeout, too large, not HTML, no
text) costs nothing but its text: the article goes on with what the feed said,
and one log line names the source and the URL. Nothing here raises.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.errors import SourceError
from monitor.extract import PageText, extract_page
from monitor.fetch import Fetcher, Validators
from monitor.normalise import with_page_text
from monitor.records import Article
from monitor.workers import JobTimeout, WorkerLost, WorkerPool

log = logging.getLogger("newsmon.fulltext")

_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True, slots=True)
class PageReader:
    fetcher: Fetcher  # the page fetcher, with the [full_text] limits
    workers: WorkerPool
    deadline: float  # seconds one extraction may take
    max_pages: int  # pages read per poll of one source

    async def read(self, source: str, articles: Sequence[Article], *,
                   allow_private: bool) -> list[Article]:
        """The articles, each with its page's text and canonical link where it could be read."""
        chosen, rest = articles[: self.max_pages], articles[self.max_pages :]
        if rest:
            log.warning("source %s: %d new articles beyond max_pages = %d keep their feed text",
                        source, len(rest), self.max_pages)
        read = await asyncio.gather(*(self._read_one(source, a, allow_private) for a in chosen))
        return [*read, *rest]

    async def _read_one(self, source: str, article: Article, allow_private: bool) -> Article:
        if article.url is None:
            return article
        try:
            page = await self._page(source, article.url, allow_private)
        except _Unreadable as exc:
            log.warning("source %s: article page %s: %s; the article keeps its feed text",
                        source, article.url, exc)
            return article
        if not page.text:
            log.info("source %s: article page %s: no main text found; the article keeps its"
                     " feed text", source, article.url)
        return with_page_text(article, page.text, page.canonical)

    async def _page(self, source: str, url: str, allow_private: bool) -> PageText:
        try:
            fetched = await self.fetcher.fetch(source, url, Validators(),
                                               allow_private=allow_private, configured=False)
        except SourceError as exc:
            raise _Unreadable(exc.reason) from None
        kind = (fetched.content_type or "text/html").split(";")[0].strip().lower()
        if kind not in _HTML_TYPES:
            raise _Unreadable(f"not an HTML page ({kind})")
        try:
            return await self.workers.run(self.deadline, extract_page, fetched.body, fetched.url)
        except JobTimeout as exc:
            raise _Unreadable(f"extracting its text took too long ({exc})") from None
        except WorkerLost as exc:
            raise _Unreadable(str(exc)) from None
        except Exception as exc:  # trafilatura or lxml on input they did not expect
            raise _Unreadable(f"cannot extract its text: {type(exc).__name__}: {exc}") from None


class _Unreadable(Exception):
    """Why a page gave no text (the article keeps its feed text)."""
