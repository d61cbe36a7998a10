"""Stage *full text*, the CPU half: an article page's bytes -> its main text and canonical link.

trafilatura finds the main text of a news page: navigation, comments, related
links, share buttons and footers are left out. The canonical link is read from
``<link rel="canonical">`` and kept only when it is an absolute http(s) URL of
the same site that names a page other than the site's home (a consent wall or
an error page often calls the home page canonical; believing it would make every
article the same article). It is normalised like every link (``canonical_url``).

Runs in a worker process (``monitor.workers``) under a deadline: pure, no I/O.
trafilatura and lxml are given the bytes, never a URL or a path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.normalise import canonical_url, plain_text

if TYPE_CHECKING:
    from lxml.html import HtmlElement


@dataclass(frozen=True, slots=True)
class PageText:
    """What an article page says: its main text (plain text, may be empty) and the
    canonical URL it names (``None`` when it names none we believe)."""

    text: str
    canonical: str | None


def extract_page(body: bytes, url: str) -> PageText:
    """Main text and canonical link of the HTML page fetched from ``url``."""
    # Imported here, where extraction runs (a worker, whose fork server preloads it):
    # the daemon's own process only names this function and never loads trafilatura.
    import trafilatura

    tree = trafilatura.load_html(body)
    if tree is None:
        return PageText("", None)
    canonical = _canonical_link(tree, url)  # read first: extraction prunes the tree
    text = trafilatura.extract(tree, include_comments=False, include_tables=False,
                               include_images=False, include_links=False, deduplicate=True)
    return PageText(plain_text(text or ""), canonical)


def _canonical_link(tree: HtmlElement, page_url: str) -> str | None:
    for link in tree.iterfind(".//link[@rel][@href]"):
        if "canonical" not in (link.get("rel") or "").lower().split():
            continue
        href = (link.get("href") or "").strip()
        if urlsplit(href).scheme.lower() not in ("http", "https"):
            return None  # relative or scheme-less: not the absolute link asked for
        canonical = canonical_url(href)
        if canonical is None or urlsplit(canonical).path in ("", "/"):
            return None
        return canonical if same_site(canonical, page_url) else None
    return None


def same_site(a: str, b: str) -> bool:
    """Whether two URLs are on one site: the same host once ``www.``/``m.``/``amp.`` are
    dropped, or one host inside the other (``news.example.org`` and ``example.org``)."""
    first, second = (_bare_host(u) for u in (a, b))
    if not first or not second:
        return False
    return first == second or first.endswith("." + second) or second.endswith("." + first)


def _bare_host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    for prefix in ("www.", "m.", "amp."):
        if host.startswith(prefix) and host.count(".") > 1:
            return host[len(prefix) :]
    return host
