"""The console channel: readable alerts, inert internet text."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

from monitor.channel_settings import ChannelTemplates, ConsoleChannelSettings
from monitor.channels.console import ConsoleChannel
from monitor.records import Alert, Digest
from monitor.severity import Severity


def alert(title: str = "Biden authorises ATACMS strikes", kind: str = "alert") -> Alert:
    return Alert(rule_id="long-range", rule_title="Policy shift", severity=Severity.HIGH,
                 channel="console", story_id="s", article_title=title,
                 article_url="http://wire.example/a", source="seed-wire",
                 published=datetime(2024, 11, 17, 21, 40, tzinfo=UTC),
                 snippet="the president cleared ATACMS strikes", matched_terms=("ATACMS",),
                 kind=kind)  # type: ignore[arg-type]


def render(item: Alert, **settings: object) -> str:
    out = io.StringIO()
    channel = ConsoleChannel("console", ConsoleChannelSettings(type="console", **settings), out)
    asyncio.run(channel.send(item))
    return out.getvalue()


def test_an_alert_shows_rule_severity_headline_source_link_and_why() -> None:
    text = render(alert())
    assert text.splitlines()[:5] == [
        "[HIGH] Policy shift  (long-range)",
        "  Biden authorises ATACMS strikes",
        "  seed-wire · 2024-11-17 21:40 UTC · http://wire.example/a",
        "  matched: ATACMS",
        "  “the president cleared ATACMS strikes”",
    ]


def test_terminal_escapes_and_newlines_in_a_headline_are_inert() -> None:
    text = render(alert("Breaking\x1b[2J\x1b[31m red\r\nFAKE: [CRITICAL] alert\x07"),
                  color="never")
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "  Breaking [2J [31m red FAKE: [CRITICAL] alert" in text.splitlines()[1]


def test_colour_marks_the_matched_terms_only_when_asked() -> None:
    assert "\x1b[1mATACMS\x1b[0m" in render(alert(), color="always")
    assert "\x1b" not in render(alert(), color="never")


def test_a_follow_up_says_which_story_it_joins() -> None:
    text = render(alert("Kyiv confirms the ATACMS decision", kind="follow_up"))
    assert text.startswith("Also reported by seed-wire: Kyiv confirms the ATACMS decision")
    assert "follows the Policy shift alert on this story" in text


def test_a_text_template_replaces_the_default() -> None:
    templates = ChannelTemplates(text="{{ severity|upper }} {{ title }} <{{ url }}>")
    assert render(alert(), templates=templates) == (
        "HIGH Biden authorises ATACMS strikes <http://wire.example/a>\n")


def test_a_digest_groups_alerts_by_rule() -> None:
    out = io.StringIO()
    channel = ConsoleChannel("console", ConsoleChannelSettings(type="console"), out)
    digest = Digest("console", (alert("one"), alert("two")), None,
                    datetime(2026, 11, 26, 8, tzinfo=UTC))
    asyncio.run(channel.send_digest(digest))
    text = out.getvalue()
    assert text.startswith("newsmon digest: 2 alerts")
    assert "Policy shift [high] — 2" in text
    assert text.index("one (seed-wire") < text.index("two (seed-wire")
