"""The fast parser and feedparser must read a feed the same way.

An article's identity and text must not depend on which parser happened to read
its feed (the fast one, or feedparser after the fast one refused): otherwise a
feed that once falls back would alert its whole archive again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.normalise import normalise_entry
from monitor.parse import parse_feed
from monitor.parse.classic import parse_with_feedparser
from monitor.parse.fast import parse_fast
from monitor.records import Article, ParsedFeed
from tests.conftest import SEEDS

FETCHED = datetime(2026, 11, 26, tzinfo=UTC)

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://x/"><title>T</title><link>http://x/</link><description>d</description>
<dc:language>fr</dc:language></channel>
<item rdf:about="http://x/1"><title>&lt;!channel&gt; One &amp; two</title><link>http://x/1</link>
<description>&lt;p&gt;Hi &lt;b&gt;there&lt;/b&gt;&lt;/p&gt;</description>
<dc:date>2024-11-17T10:00:00Z</dc:date><dc:creator>Ann</dc:creator></item>
</rdf:RDF>"""

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>W</title><link>http://w/</link><language>en-GB</language>
<item><title>EU adopts 15th package &#8211; &lt;@U123&gt;</title>
<link>http://w/a?utm_source=x</link>
<guid isPermaLink="false">g-1</guid><pubDate>Mon, 18 Nov 2024 10:15:00 +0000</pubDate>
<description><![CDATA[<p>Ministers <b>agreed</b> &amp; signed.</p>]]></description>
<content:encoded><![CDATA[<p>Full text.</p><script>x()</script>]]></content:encoded></item>
<item><title>No guid, no date</title><link>http://w/b</link>
<description>plain &amp; simple</description></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title>O</title><id>tag:o,2024:f</id>
<updated>2024-11-19T15:05:00Z</updated>
<entry><id>tag:o,2024:1</id><title type="html">Kyiv &amp;amp; Washington</title>
<link rel="alternate" href="http://o/1"/><published>2024-11-17T22:10:00Z</published>
<updated>2024-11-18T07:30:00Z</updated><author><name>Liina</name></author>
<summary type="html">&lt;p&gt;Lead &lt;i&gt;here&lt;/i&gt;&lt;/p&gt;</summary>
<content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry>
<entry><id>tag:o,2024:2</id><title>Plain title &lt;b&gt; literal</title>
<updated>2024-11-18T07:30:00Z</updated>
<summary>Plain summary</summary></entry>
</feed>"""

FEEDS = {
    "seed-wire": (SEEDS / "feeds" / "wire.xml").read_bytes(),
    "seed-observer": (SEEDS / "feeds" / "outlet.atom").read_bytes(),
    "rdf": RDF,
    "rss": RSS,
    "atom": ATOM,
}


def articles(feed: ParsedFeed) -> list[Article]:
    return [normalise_entry("src", entry, FETCHED) for entry in feed.entries]


@pytest.mark.parametrize("name", list(FEEDS))
def test_both_parsers_give_the_same_articles(name: str) -> None:
    body = FEEDS[name]
    classic = parse_with_feedparser(body, None, 1000)
    assert isinstance(classic, ParsedFeed)
    fast, slow = articles(parse_fast(body, 1000)), articles(classic)
    if name == "atom":  # Atom says its title is plain text; only feedparser reads type="text"
        fast, slow = fast[:1], slow[:1]
    assert fast == slow
    assert fast


@pytest.mark.parametrize(
    ("title", "expected"),
    [(b"Tom & Jerry sanctions", "Tom & Jerry sanctions"),
     (b"Broken <br> tag", "Broken tag")],
    ids=["bare-ampersand", "unclosed-tag"],
)
def test_broken_xml_is_read_whole_by_feedparser_not_cut_by_the_fast_parser(
    title: bytes, expected: str
) -> None:
    body = (b"<rss version='2.0'><channel><title>A</title><item><title>" + title +
            b"</title><guid>1</guid></item></channel></rss>")
    with pytest.raises(ValueError, match="not well-formed"):
        parse_fast(body, 1000)
    (entry,) = parse_feed("src", "http://w/", body).entries
    assert normalise_entry("src", entry, FETCHED).title == expected


# --- dates only from date elements; links made absolute ------------------------------------

READERS = {
    "fast": lambda body, url: parse_fast(body, 1000, url),
    "feedparser": lambda body, url: parse_with_feedparser(body, None, 1000, url),
}

UNDATED = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:dcterms="http://purl.org/dc/terms/"><channel><title>U</title><link>http://u/</link>
<item><title>Numbered guid</title><guid>7</guid><link>http://u/7</link></item>
<item><title>Month-like guid</title><guid>may</guid></item>
<item><title>Only modified</title><guid isPermaLink="false">on5</guid><link>http://u/on5</link>
<dcterms:modified>2024-06-02T08:00:00Z</dcterms:modified></item>
<item><title>Date-like guid, dated</title><guid isPermaLink="false">2024-05-01</guid>
<link>http://u/d</link><dc:date>2024-05-01T00:00:00Z</dc:date></item>
</channel></rss>"""


@pytest.mark.parametrize("reader", list(READERS))
def test_an_item_is_dated_only_by_its_date_elements_never_by_its_guid(reader: str) -> None:
    feed = READERS[reader](UNDATED, "http://u/feed")
    assert isinstance(feed, ParsedFeed)
    assert [e.published for e in feed.entries] == [
        None, None, datetime(2024, 6, 2, 8, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)]


RELATIVE_RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>R</title><link>http://site.example/</link>
<item><title>Rooted</title><guid>r-1</guid><link>/news/1</link></item>
<item><title>Beside the feed</title><guid>r-2</guid><link>story-2</link></item>
<item><title>Guid is the link</title><guid>/news/3</guid><link>/news/3</link></item>
<item><title>No link, a guid</title><guid>r-4</guid></item>
<item><title>Script</title><guid>r-5</guid><link>javascript:alert(1)</link></item>
</channel></rss>"""


@pytest.mark.parametrize("reader", list(READERS))
def test_relative_item_links_resolve_against_the_feed_url(reader: str) -> None:
    feed = READERS[reader](RELATIVE_RSS, "https://feeds.example/world/rss.xml")
    assert isinstance(feed, ParsedFeed)
    found = [(a.url, a.identity) for a in articles(feed)]
    assert [url for url, _ in found] == [
        "https://feeds.example/news/1", "https://feeds.example/world/story-2",
        "https://feeds.example/news/3", None, None]
    # A guid that is the link as written says nothing more than the link.
    assert found[2][1] == normalise_entry("src", feed.entries[2], FETCHED, "url").identity


@pytest.mark.parametrize("reader", list(READERS))
def test_a_feed_read_from_a_file_resolves_relative_links_against_its_own_link(
        reader: str) -> None:
    feed = READERS[reader](RELATIVE_RSS, "/var/feeds/rss.xml")
    assert isinstance(feed, ParsedFeed)
    assert feed.entries[0].link == "http://site.example/news/1"
    unlinked = READERS[reader](RELATIVE_RSS.replace(b"<link>http://site.example/</link>", b""),
                               "file:///var/feeds/rss.xml")
    assert isinstance(unlinked, ParsedFeed)
    assert [e.link for e in unlinked.entries][:3] == [None, None, None]


def test_the_parsers_agree_on_relative_links() -> None:
    slow = parse_with_feedparser(RELATIVE_RSS, None, 1000, "http://f.example/a/rss")
    assert isinstance(slow, ParsedFeed)
    assert articles(parse_fast(RELATIVE_RSS, 1000, "http://f.example/a/rss")) == articles(slow)


XML_BASE_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="%s">
<title>B</title><id>urn:b</id><updated>2024-11-18T07:30:00Z</updated>
<entry><title>Zinc</title><id>urn:b:1</id><updated>2024-11-18T07:30:00Z</updated>
<link rel="enclosure" href="/audio/1.mp3"/><link rel="alternate" href="zinc-smelters"/></entry>
</feed>"""


@pytest.mark.parametrize(("base", "expected"), [
    (b"http://base.example/world/", "http://base.example/world/zinc-smelters"),
    (b"/world/", "https://feeds.example/world/zinc-smelters"),
], ids=["absolute-base", "relative-base"])
def test_atom_links_resolve_against_xml_base(base: bytes, expected: str) -> None:
    body = XML_BASE_ATOM % base
    with pytest.raises(ValueError, match="xml:base"):  # fastfeedparser ignores xml:base
        parse_fast(body, 1000, "https://feeds.example/atom/feed.xml")
    (entry,) = parse_feed("src", "https://feeds.example/old", body,
                          final_url="https://feeds.example/atom/feed.xml").entries
    assert entry.link == expected


def test_json_feed_item_urls_resolve_against_the_feed_url() -> None:
    body = (b'{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": ['
            b'{"id": "j-1", "url": "/posts/1"}, {"id": "/posts/2", "url": "/posts/2"}]}')
    first, second = parse_feed("src", "https://json.example/feed.json", body).entries
    assert (first.guid, first.link) == ("j-1", "https://json.example/posts/1")
    assert second.guid == second.link == "https://json.example/posts/2"
