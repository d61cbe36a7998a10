"""Parse: RSS 2.0, Atom, RSS 1.0 and JSON Feed bodies -> entries; hostile bodies -> ParseError."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ParseError
from monitor.normalise import normalise_entry
from monitor.parse import parse_feed
from monitor.parse.classic import parse_with_feedparser
from monitor.parse.fast import parse_fast
from monitor.records import FeedEntry

ROOT = Path(__file__).resolve().parent.parent
SECRET = "TOP-SECRET-LOCAL-FILE-CONTENT"

RSS2 = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel>
    <title>Seed Wire</title>
    <link>http://wire.example/</link>
    <description>Demo</description>
    <language>en-gb</language>
    <item>
      <title>Biden authorises ATACMS strikes</title>
      <link>http://wire.example/1?utm_source=rss</link>
      <guid isPermaLink="false">wire-1</guid>
      <pubDate>Sun, 17 Nov 2024 21:40:00 GMT</pubDate>
      <author>desk@wire.example (Jane Doe)</author>
      <description><![CDATA[<p>Short <b>summary</b></p>]]></description>
      <content:encoded><![CDATA[<p>The whole story.</p>]]></content:encoded>
    </item>
    <item>
      <title>Second item</title>
      <link>http://wire.example/2</link>
    </item>
  </channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de">
  <title>Observer</title>
  <id>urn:observer</id>
  <updated>2024-11-18T07:30:00Z</updated>
  <entry>
    <id>tag:observer.example,2024:1</id>
    <title>Washington lifts curbs</title>
    <link rel="alternate" type="text/html" href="http://observer.example/1"/>
    <published>2024-11-17T22:10:00Z</published>
    <updated>2024-11-18T07:30:00Z</updated>
    <author><name>Liina Kask</name></author>
    <summary>Short summary</summary>
    <content type="html">&lt;p&gt;Body text&lt;/p&gt;</content>
  </entry>
  <entry>
    <id>tag:observer.example,2024:2</id>
    <title>Only updated</title>
    <link href="http://observer.example/2"/>
    <updated>2024-11-18T07:30:00+02:00</updated>
  </entry>
</feed>
"""

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="http://rdf.example/">
    <title>RDF Wire</title>
    <link>http://rdf.example/</link>
    <description>An RSS 1.0 feed</description>
    <dc:language>fr</dc:language>
    <items><rdf:Seq><rdf:li rdf:resource="http://rdf.example/1"/></rdf:Seq></items>
  </channel>
  <item rdf:about="http://rdf.example/1">
    <title>Sanctions round</title>
    <link>http://rdf.example/1</link>
    <description>The EU adopts a package.</description>
    <dc:date>2024-11-18T10:00:00Z</dc:date>
    <dc:creator>Ann Author</dc:creator>
  </item>
</rdf:RDF>
"""

JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "JSON Wire",
    "language": "en",
    "items": [
        {
            "id": "jf-1",
            "url": "https://json.example/1",
            "title": "EU drafts a package",
            "summary": "Short",
            "content_html": "<p>Body</p>",
            "content_text": "Body as text",
            "date_published": "2024-11-18T10:00:00Z",
            "authors": [{"name": "Ann"}, {"name": "Bo"}],
        },
        {
            "id": "jf-2",
            "external_url": "https://elsewhere.example/2",
            "content_text": "Plain body",
            "date_modified": "2024-11-18T10:00:00",
            "language": "de",
        },
        "not an item",
    ],
}


def parse(body: bytes, **options: object) -> tuple[FeedEntry, ...]:
    return parse_feed("src", "http://feeds.example/x", body, **options).entries  # type: ignore[arg-type]


def parse_error(body: bytes, content_type: str | None = None) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_feed("src", "http://feeds.example/x", body, content_type)
    assert caught.value.source == "src"
    assert str(caught.value).startswith("source src (http://feeds.example/x): ")
    return caught.value


def rss_with_items(count: int) -> bytes:
    items = "".join(
        f"<item><title>Item {i}</title><guid>g{i}</guid></item>" for i in range(count)
    )
    return (f'<rss version="2.0"><channel><title>Many</title>{items}</channel></rss>').encode()


# --- formats ----------------------------------------------------------------------------


def test_rss_2_entries_are_mapped_field_by_field() -> None:
    feed = parse_feed("src", "u", RSS2)
    assert feed.title == "Seed Wire"
    assert feed.skipped == 0
    first, second = feed.entries
    assert first == FeedEntry(
        guid="wire-1",
        link="http://wire.example/1?utm_source=rss",
        title="Biden authorises ATACMS strikes",
        summary="<p>Short <b>summary</b></p>",
        content="<p>The whole story.</p>",
        author="desk@wire.example (Jane Doe)",
        published=datetime(2024, 11, 17, 21, 40, tzinfo=UTC),
        language="en-gb",
    )
    assert second.title == "Second item"
    assert second.link == "http://wire.example/2"
    assert second.published is None


def test_atom_entries_are_mapped_field_by_field() -> None:
    feed = parse_feed("src", "u", ATOM)
    assert feed.title == "Observer"
    first, second = feed.entries
    assert first == FeedEntry(
        guid="tag:observer.example,2024:1",
        link="http://observer.example/1",
        title="Washington lifts curbs",
        summary="Short summary",
        content="<p>Body text</p>",
        author="Liina Kask",
        published=datetime(2024, 11, 17, 22, 10, tzinfo=UTC),
        language="de",
    )
    # no <published>: the update time stands in, converted to UTC
    assert second.published == datetime(2024, 11, 18, 5, 30, tzinfo=UTC)


def test_rss_1_rdf_entries_are_mapped() -> None:
    feed = parse_feed("src", "u", RDF)
    assert feed.title == "RDF Wire"
    (entry,) = feed.entries
    assert entry.title == "Sanctions round"
    assert entry.link == "http://rdf.example/1"
    assert entry.summary == "The EU adopts a package."
    assert entry.author == "Ann Author"
    assert entry.published == datetime(2024, 11, 18, 10, 0, tzinfo=UTC)
    assert entry.language == "fr"


def test_json_feed_items_are_mapped_and_non_items_skipped() -> None:
    feed = parse_feed("src", "u", json.dumps(JSON_FEED).encode())
    assert feed.title == "JSON Wire"
    first, second = feed.entries
    assert first == FeedEntry(
        guid="jf-1",
        link="https://json.example/1",
        title="EU drafts a package",
        summary="Short",
        content="<p>Body</p>",
        author="Ann, Bo",
        published=datetime(2024, 11, 18, 10, 0, tzinfo=UTC),
        language="en",
    )
    assert second.link == "https://elsewhere.example/2"
    assert second.content == "Plain body"
    assert second.published == datetime(2024, 11, 18, 10, 0, tzinfo=UTC)
    assert second.language == "de"
    assert second.title == ""


def test_a_json_feed_1_0_author_object_is_read() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1",
        "title": "Old",
        "items": [{"id": "1", "content_text": "x", "author": {"name": "Solo"}}],
    }
    (entry,) = parse(json.dumps(document).encode())
    assert entry.author == "Solo"


def test_a_json_content_type_selects_the_json_feed_reader() -> None:
    body = b"\xef\xbb\xbf\n  " + json.dumps(JSON_FEED).encode()
    assert len(parse_feed("src", "u", body, "application/feed+json; charset=utf-8").entries) == 2


@pytest.mark.parametrize(("name", "count"), [("wire.xml", 12), ("outlet.atom", 10)])
def test_the_seed_feeds_give_all_their_entries(name: str, count: int) -> None:
    feed = parse_feed("seed", name, (ROOT / "seeds" / "feeds" / name).read_bytes())
    assert len(feed.entries) == count
    assert feed.skipped == 0
    assert all(e.guid and e.title and e.link for e in feed.entries)
    assert len({e.guid for e in feed.entries}) == count


def test_the_seed_wire_carries_the_whole_seed_article_in_its_content() -> None:
    feed = parse_feed("seed", "wire", (ROOT / "seeds" / "feeds" / "wire.xml").read_bytes())
    first = feed.entries[0]
    assert first.guid == "wire-biden-atacms"
    assert "15th sanctions package" in first.content
    assert first.language == "en"


# --- the item cap -----------------------------------------------------------------------


def test_max_items_caps_the_entries_and_counts_the_rest() -> None:
    feed = parse_feed("src", "u", rss_with_items(25), max_items=10)
    assert [e.title for e in feed.entries] == [f"Item {i}" for i in range(10)]
    assert feed.skipped == 15


def test_max_items_caps_a_json_feed_too() -> None:
    document = {"version": "https://jsonfeed.org/version/1.1",
                "items": [{"id": str(i)} for i in range(7)]}
    feed = parse_feed("src", "u", json.dumps(document).encode(), max_items=3)
    assert [e.guid for e in feed.entries] == ["0", "1", "2"]
    assert feed.skipped == 4


def dated_rss(days: list[int]) -> bytes:
    items = "".join(
        f"<item><title>Day {d}</title><guid>g{d}</guid>"
        f"<pubDate>{d:02d} Nov 2024 10:00:00 +0000</pubDate></item>" for d in days
    )
    return f'<rss version="2.0"><channel><title>Dated</title>{items}</channel></rss>'.encode()


@pytest.mark.parametrize("parser", ["fast", "feedparser"])
@pytest.mark.parametrize(("days", "kept"), [
    ([5, 4, 3, 2, 1], ["Day 5", "Day 4"]),  # newest first: the first ones
    ([1, 2, 3, 4, 5], ["Day 4", "Day 5"]),  # oldest first: the last ones
], ids=["newest-first", "oldest-first"])
def test_a_feed_over_the_cap_keeps_its_newest_entries_whichever_order_it_lists_them(
    parser: str, days: list[int], kept: list[str],
) -> None:
    body = dated_rss(days)
    feed = (parse_fast(body, 2) if parser == "fast"
            else parse_with_feedparser(body, "application/rss+xml", 2))
    assert not isinstance(feed, str)
    assert ([e.title for e in feed.entries], feed.skipped) == (kept, 3)


def test_a_json_feed_listed_oldest_first_over_the_cap_keeps_its_newest_items() -> None:
    document = {"version": "https://jsonfeed.org/version/1.1", "items": [
        {"id": str(d), "date_published": f"2024-11-{d:02d}T10:00:00Z"} for d in range(1, 8)]}
    feed = parse_feed("src", "u", json.dumps(document).encode(), max_items=3)
    assert [e.guid for e in feed.entries] == ["5", "6", "7"]
    assert feed.skipped == 4


def test_a_feed_under_the_cap_skips_nothing() -> None:
    feed = parse_feed("src", "u", rss_with_items(5), max_items=5)
    assert (len(feed.entries), feed.skipped) == (5, 0)


# --- bodies that name files are never opened --------------------------------------------


@pytest.mark.timeout(10)
def test_a_body_reading_dev_zero_is_not_opened() -> None:
    error = parse_error(b"/dev/zero")
    assert error.reason.startswith("not a feed")


def test_a_body_that_is_the_path_of_a_local_feed_is_not_opened(tmp_path: Path) -> None:
    local = tmp_path / "local.xml"
    local.write_bytes(RSS2.replace(b"Biden authorises ATACMS strikes", SECRET.encode()))
    for body in (str(local).encode(), f"file://{local}".encode()):
        error = parse_error(body)
        assert error.reason.startswith("not a feed")
        assert SECRET not in str(error)


def test_a_body_that_is_the_path_of_a_local_text_file_is_not_opened(tmp_path: Path) -> None:
    local = tmp_path / "secret.txt"
    local.write_text(SECRET)
    error = parse_error(str(local).encode())
    assert error.reason.startswith("not a feed")
    assert SECRET not in str(error)


# --- entity declarations are refused ----------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rss version="2.0"><channel><title>&lol3;</title>
<item><title>&lol3;</title><guid>g</guid></item></channel></rss>
"""


def test_a_billion_laughs_document_is_refused() -> None:
    error = parse_error(BILLION_LAUGHS)
    assert "entities" in error.reason
    assert "lollol" not in str(error)


def test_an_external_entity_naming_a_local_file_is_refused(tmp_path: Path) -> None:
    local = tmp_path / "secret.txt"
    local.write_text(SECRET)
    body = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{local}">]>\n'
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>&xxe;</title><guid>g</guid></item></channel></rss>"
    ).encode()
    error = parse_error(body)
    assert "entities" in error.reason
    assert SECRET not in str(error)


def _flat_entity_feed(prolog_padding: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="{encoding}"?>'
        + prolog_padding
        + '<!DOCTYPE rss [<!ENTITY e "EXPANDED">]>'
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>&e;&e;&e;</title><guid>g</guid></item></channel></rss>"
    )


def test_an_entity_declaration_after_a_long_prolog_is_still_refused() -> None:
    body = _flat_entity_feed("<!--" + "x" * 70_000 + "-->").format(encoding="utf-8")
    error = parse_error(body.encode("utf-8"))
    assert "entities" in error.reason


@pytest.mark.parametrize(
    ("codec", "bom"),
    [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")],
    ids=["utf-16-le", "utf-16-be"],
)
def test_an_entity_declaration_in_a_utf16_document_is_still_refused(codec: str, bom: bytes) -> None:
    body = bom + _flat_entity_feed().format(encoding="utf-16").encode(codec)
    error = parse_error(body)
    assert "entities" in error.reason


@pytest.mark.parametrize("encoding", ["idna", "punycode", "undefined"])
def test_a_declared_codec_that_is_no_document_encoding_is_read_or_refused_never_a_crash(
    encoding: str,
) -> None:
    """Python codecs that refuse to decode "with replacement", or at all."""
    body = _rss_with_title("Café", f'<?xml version="1.0" encoding="{encoding}"?>')
    try:
        feed = parse_feed("src", "http://x/feed", body.encode("latin-1"))
    except ParseError:
        return
    assert [entry.title for entry in feed.entries] == ["Café"]


# --- not a feed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", None),
        (b"  \r\n\t ", None),
        (b"\xef\xbb\xbf", None),
        (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
         b"<body><p>Checking your browser before accessing the site.</p></body></html>",
         "text/html; charset=utf-8"),
        (b"<html><body><h1>Welcome</h1></body></html>", None),
        (b'{"hello": "world"}', None),
        (b'{"version": "1.1", "items": []}', "application/json"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', None),
        (b"[1, 2, 3]", "application/json"),
        (b"{not json", None),
        (b"just some words", "text/plain"),
        (b"<?xml version='1.0'?><note><to>x</to></note>", "application/xml"),
    ],
    ids=["empty", "whitespace", "bom-only", "challenge-page", "html", "json-object",
         "json-wrong-version", "json-items-not-a-list", "json-array", "bad-json", "text",
         "other-xml"],
)
def test_a_body_that_is_not_a_feed_is_a_parse_error_saying_so(
    body: bytes, content_type: str | None
) -> None:
    error = parse_error(body, content_type)
    assert error.reason.startswith("not a feed"), error.reason


def test_the_not_a_feed_reason_shows_how_the_body_begins() -> None:
    error = parse_error(b"<html><body><p>Checking your browser</p></body></html>", "text/html")
    assert "text/html" in error.reason
    assert "Checking your browser" in error.reason


def test_markup_like_text_in_a_plain_text_title_survives_as_text() -> None:
    body = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item>"
            b"<title>&lt;!channel&gt; Sanctions &lt;@U123&gt; &amp; more</title>"
            b"<guid>g1</guid></item></channel></rss>")
    (entry,) = parse_feed("src", "http://x/feed", body).entries
    article = normalise_entry("src", entry, datetime(2026, 11, 26, tzinfo=UTC))
    assert article.title == "<!channel> Sanctions <@U123> & more"


def test_html_in_a_title_is_reduced_to_its_text() -> None:
    body = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item>"
            b"<title>&lt;b&gt;Breaking:&lt;/b&gt; EU sanctions</title>"
            b"<guid>g1</guid></item></channel></rss>")
    (entry,) = parse_feed("src", "http://x/feed", body).entries
    article = normalise_entry("src", entry, datetime(2026, 11, 26, tzinfo=UTC))
    assert article.title == "Breaking: EU sanctions"


def _rss_with_title(title: str, declaration: str = '<?xml version="1.0"?>') -> str:
    return (f'{declaration}<rss version="2.0"><channel><title>t</title><item>'
            f"<title>{title}</title><guid>1</guid></item></channel></rss>")


@pytest.mark.parametrize(
    ("body", "title"),
    [
        (_rss_with_title("Санкции против России",
                         '<?xml version="1.0" encoding="windows-1251"?>').encode("cp1251"),
         "Санкции против России"),
        (_rss_with_title("Café – “quotes”").encode("cp1252"), "Café – “quotes”"),
        (b"\xef\xbb\xbf" + _rss_with_title("Zélensky").encode(), "Zélensky"),
        (_rss_with_title("Zélensky’s", '<?xml version="1.0" encoding="iso-8859-1"?>').encode(),
         "Zélensky’s"),
        (_rss_with_title("Straße", '<?xml version="1.0" encoding="utf-16"?>').encode("utf-16"),
         "Straße"),
        # Its one 'ß“' is also valid UTF-8 (U+07D3): as many such pairs as stray bytes
        # is no sign of UTF-8.
        (_rss_with_title("„Spaß“").encode("cp1252"), "„Spaß“"),
    ],
    ids=["windows-1251", "windows-1252-undeclared", "utf-8-bom", "utf-8-declared-latin-1",
         "utf-16", "windows-1252-undeclared-with-a-utf-8-lookalike"],
)
def test_encodings_yield_readable_text(body: bytes, title: str) -> None:
    (entry,) = parse_feed("src", "http://x/feed", body).entries
    assert entry.title == title


# A title the fast parser refuses (a bare "&"), so feedparser reads the body: both
# parsers must reach the same encoding.
_BROKEN = " & co"


@pytest.mark.parametrize("tail", ["", _BROKEN], ids=["fast-parser", "feedparser"])
@pytest.mark.parametrize(
    ("mark", "codec"),
    [(b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"),
     (b"\xff\xfe\x00\x00", "utf-32-le")],
    ids=["utf-8", "utf-16-le", "utf-16-be", "utf-32-le"],
)
def test_a_byte_order_mark_decides_the_encoding_over_the_declaration_and_the_charset(
    mark: bytes, codec: str, tail: str
) -> None:
    title = "Киев: санкции"
    body = mark + _rss_with_title(
        title + tail, '<?xml version="1.0" encoding="windows-1251"?>').encode(codec)
    (entry,) = parse_feed("src", "http://x/feed", body,
                          "application/rss+xml; charset=koi8-r").entries
    assert entry.title == title + tail.replace("&", "&amp;")


@pytest.mark.parametrize("tail", ["", _BROKEN], ids=["fast-parser", "feedparser"])
@pytest.mark.parametrize(
    ("declaration", "content_type"),
    [('<?xml version="1.0" encoding="windows-1251"?>', None),
     ('<?xml version="1.0" encoding = \'KOI8-R\'?>', "application/rss+xml"),
     ('<?xml version="1.0"?>', "application/rss+xml; charset=windows-1251"),
     ('<?xml version="1.0" encoding="utf-8"?>', 'text/xml; charset="iso-8859-5"')],
    ids=["declared-windows-1251", "declared-koi8-r", "charset-windows-1251",
         "charset-iso-8859-5"],
)
def test_valid_utf8_under_a_single_byte_declaration_is_read_as_utf8(
    declaration: str, content_type: str | None, tail: str
) -> None:
    title = "Минск: санкции"
    body = _rss_with_title(title + tail, declaration).encode("utf-8")
    (entry,) = parse_feed("src", "http://x/feed", body, content_type).entries
    assert entry.title == title + tail.replace("&", "&amp;")


def test_a_single_byte_declaration_is_believed_when_only_some_bytes_look_like_utf8() -> None:
    """'ß“' is valid UTF-8 (U+07D3); the stray bytes beside it are not."""
    body = _rss_with_title("„Spaß“", '<?xml version="1.0" encoding="windows-1252"?>')
    (entry,) = parse_feed("src", "http://x/feed", body.encode("cp1252"),
                          "application/rss+xml; charset=windows-1252").entries
    assert entry.title == "„Spaß“"


def test_invalid_bytes_do_not_cost_the_rest_of_the_text() -> None:
    body = _rss_with_title("EU sanctions \udcff").encode("utf-8", "surrogateescape")
    (entry,) = parse_feed("src", "http://x/feed", body).entries
    assert entry.title.startswith("EU sanctions ")
