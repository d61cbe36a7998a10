"""Normalise: canonical URLs, plain text from HTML, and a stable identity per article."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.identity import content_fingerprint
from monitor.normalise import canonical_url, html_to_text, normalise_entry, with_canonical_url
from monitor.records import FeedEntry

FETCHED = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)


def entry(**fields: object) -> FeedEntry:
    values: dict[str, object] = {
        "guid": None, "link": None, "title": "", "summary": "", "content": "", "author": "",
        "published": None, "language": None,
    }
    values.update(fields)
    return FeedEntry(**values)  # type: ignore[arg-type]


# --- canonical_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://example.com/a?utm_source=rss&utm_medium=feed&utm_campaign=x",
         "https://example.com/a"),
        ("https://example.com/a?UTM_Source=rss", "https://example.com/a"),
        ("https://example.com/a?fbclid=IwAR0abc", "https://example.com/a"),
        ("https://example.com/a?gclid=Cj0KCQ", "https://example.com/a"),
        ("https://example.com/a?id=5&utm_source=rss&page=2&fbclid=x&gclid=y",
         "https://example.com/a?id=5&page=2"),
    ],
)
def test_tracking_parameters_are_removed_and_others_kept(link: str, expected: str) -> None:
    assert canonical_url(link) == expected


def test_the_order_of_the_remaining_parameters_is_kept() -> None:
    assert canonical_url("https://example.com/s?q=atacms&utm_term=x&b=2&a=1") == (
        "https://example.com/s?q=atacms&b=2&a=1"
    )


def test_the_fragment_is_dropped() -> None:
    assert canonical_url("https://example.com/news/1#comments") == "https://example.com/news/1"


def test_the_host_is_lower_cased_but_not_the_path() -> None:
    assert canonical_url("HTTPS://News.Example.COM/World/ATACMS") == (
        "https://news.example.com/World/ATACMS"
    )


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
    ],
)
def test_default_ports_are_dropped_and_others_kept(link: str, expected: str) -> None:
    assert canonical_url(link) == expected


def test_an_empty_path_becomes_the_root() -> None:
    assert canonical_url("https://example.com") == "https://example.com/"


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "ftp://example.com/file",
        "mailto:desk@example.org",
        "/relative/path",
        "https://",
        "https://example.com:99999/",
    ],
)
def test_links_that_are_not_http_urls_become_none(link: str) -> None:
    assert canonical_url(link) is None


def test_the_same_article_shared_twice_gets_one_url() -> None:
    shared = [
        "https://Example.com:443/news/1?utm_source=twitter#top",
        "https://example.com/news/1?fbclid=abc",
        "https://example.com/news/1",
    ]
    assert {canonical_url(link) for link in shared} == {"https://example.com/news/1"}


def test_an_ipv6_host_keeps_its_brackets() -> None:
    assert canonical_url("http://[2001:db8::1]:8080/feed?utm_source=x") == (
        "http://[2001:db8::1]:8080/feed"
    )
    assert canonical_url("http://[2001:db8::1]:80/feed") == "http://[2001:db8::1]/feed"


def test_a_canonical_url_from_the_page_changes_the_url_but_not_the_identity() -> None:
    article = normalise_entry("wire", entry(guid="g", link="http://feeds.example/r/1",
                                            title="A"), FETCHED)
    found = with_canonical_url(article, "https://Example.com:443/news/1?utm_source=x#top")
    assert found.url == "https://example.com/news/1"
    assert (found.identity, found.fingerprint) == (article.identity, article.fingerprint)
    assert with_canonical_url(article, "javascript:alert(1)") == article


# --- html_to_text -----------------------------------------------------------------------


def test_tags_are_removed() -> None:
    assert html_to_text('<b>Biden</b> authorises <a href="/x">ATACMS</a>') == (
        "Biden authorises ATACMS"
    )


def test_entities_are_decoded_exactly_once() -> None:
    assert html_to_text("<p>a &amp;lt; b</p>") == "a &lt; b"
    assert html_to_text("AT&amp;T &lt;b&gt;") == "AT&T <b>"
    assert html_to_text("caf&eacute; &#8220;quoted&#x201d;") == "café “quoted”"


def test_escaped_markup_becomes_text_not_markup() -> None:
    text = html_to_text("&lt;script&gt;alert(1)&lt;/script&gt; and &lt;!channel&gt;")
    assert text == "<script>alert(1)</script> and <!channel>"


def test_script_and_style_are_dropped_with_their_content() -> None:
    html = (
        "<style>p { color: red }</style><p>Visible</p>"
        "<script>document.write('hidden')</script><noscript>also hidden</noscript> text"
    )
    assert html_to_text(html) == "Visible\ntext"


def test_paragraphs_are_kept_as_lines_and_whitespace_is_folded() -> None:
    html = "<p>First \t  paragraph  continues.</p>\n\n<p>Second</p><br>Third<div>Fourth</div>"
    assert html_to_text(html) == "First paragraph continues.\nSecond\nThird\nFourth"


def test_list_items_and_headings_break_lines() -> None:
    assert html_to_text("<h2>Title</h2><ul><li>one</li><li>two</li></ul>") == "Title\none\ntwo"


@pytest.mark.parametrize(
    "raw",
    [
        "Bcc:\x00evil\x1b[31m red\x7f",
        "<p>Bcc:\x00evil\x1b[31m red\x7f</p>",
        "Bcc:\u200bevil\u2028[31m red\ufeff",
        "Bcc:&#0;evil\x1b[31m red\x85",
    ],
)
def test_control_characters_are_removed(raw: str) -> None:
    text = html_to_text(raw)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]", text)
    assert re.sub(r"[\s\ufffd]", "", text) == "Bcc:evil[31mred"


def test_plain_text_is_kept_as_it_is() -> None:
    assert html_to_text("Fish & chips < 5 pounds") == "Fish & chips < 5 pounds"
    assert html_to_text("") == ""


def test_text_is_nfc_normalised() -> None:
    assert html_to_text("Ze\u0301lensky") == "Zélensky"


# --- normalise_entry and identity -------------------------------------------------------


def test_an_entry_becomes_a_plain_text_article() -> None:
    article = normalise_entry(
        "seed-wire",
        entry(
            guid="wire-1",
            link="http://wire.example/a?utm_source=rss#x",
            title="  <b>Biden</b>\n authorises\tATACMS ",
            summary="<p>One</p><p>Two</p>",
            content="<p>Body &amp; more</p>",
            author="<i>Jane</i>\nDoe",
            language="en-GB",
        ),
        FETCHED,
    )
    assert article.source == "seed-wire"
    assert article.url == "http://wire.example/a"
    assert article.title == "Biden authorises ATACMS"
    assert article.summary == "One\nTwo"
    assert article.content == "Body & more"
    assert article.author == "Jane Doe"
    assert article.language == "en"
    assert article.guid == "wire-1"
    assert article.fetched == FETCHED
    assert article.when == FETCHED


def test_a_javascript_link_leaves_the_article_without_url() -> None:
    article = normalise_entry("s", entry(guid="g", link="javascript:alert(1)"), FETCHED)
    assert article.url is None


def test_identity_comes_from_the_guid_first() -> None:
    first = normalise_entry("wire", entry(guid="g-1", link="http://a.example/1", title="A"),
                            FETCHED)
    edited = normalise_entry("wire", entry(guid="g-1", link="http://a.example/2", title="B"),
                             FETCHED)
    other = normalise_entry("wire", entry(guid="g-2", link="http://a.example/1", title="A"),
                            FETCHED)
    assert first.identity == edited.identity
    assert first.identity != other.identity


def test_identity_falls_back_to_the_canonical_url() -> None:
    a = normalise_entry("wire", entry(link="http://a.example/1?utm_source=rss", title="A"),
                        FETCHED)
    b = normalise_entry("wire", entry(link="http://A.example/1#top", title="A, edited"), FETCHED)
    c = normalise_entry("wire", entry(link="http://a.example/2", title="A"), FETCHED)
    assert a.identity == b.identity
    assert a.identity != c.identity


def test_identity_falls_back_to_the_text_without_guid_or_url() -> None:
    a = normalise_entry("wire", entry(title="Same", summary="<p>text</p>"), FETCHED)
    b = normalise_entry("wire", entry(title="Same", summary="text"), FETCHED)
    c = normalise_entry("wire", entry(title="Same", summary="other text"), FETCHED)
    assert a.identity == b.identity
    assert a.identity != c.identity


def test_link_identity_ignores_the_guid() -> None:
    a = normalise_entry("wire", entry(guid="g-1", link="http://a.example/1", title="A"),
                        FETCHED, "link")
    b = normalise_entry("wire", entry(guid="g-2", link="http://a.example/1?utm_medium=rss",
                                      title="A, edited"), FETCHED, "link")
    assert a.identity == b.identity


def test_content_identity_ignores_guid_and_link() -> None:
    a = normalise_entry("wire", entry(guid="g-1", link="http://a.example/1", title="A",
                                      summary="<p>Same text.</p>"), FETCHED, "content")
    b = normalise_entry("wire", entry(guid="g-2", link="http://a.example/2", title="A",
                                      summary="Same  text"), FETCHED, "content")
    c = normalise_entry("wire", entry(guid="g-1", link="http://a.example/1", title="A",
                                      summary="Other text"), FETCHED, "content")
    assert a.identity == b.identity != c.identity


def test_the_fingerprint_is_that_of_the_plain_text() -> None:
    article = normalise_entry("wire", entry(title="<b>A</b>", summary="<p>x &amp; y</p>"),
                              FETCHED)
    assert article.fingerprint == content_fingerprint("A", "x & y", "")


def test_a_publication_time_in_the_future_is_replaced_by_the_fetch_time() -> None:
    fetched = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    entry = FeedEntry(guid="g", link=None, title="t", summary="", content="", author="",
                      published=fetched + timedelta(days=400), language=None)
    assert normalise_entry("src", entry, fetched).published == fetched
    soon = replace(entry, published=fetched + timedelta(minutes=30))
    assert normalise_entry("src", soon, fetched).published == fetched + timedelta(minutes=30)
