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
