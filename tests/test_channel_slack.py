"""Channel *slack* against a fake Slack on 127.0.0.1 (tests/slack_server.py)."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import pytest

from monitor.channel_settings import SlackChannelSettings
from monitor.channels.slack import MAX_RETRY_AFTER, SlackChannel, retry_after_seconds
from monitor.channels.slack_blocks import MAX_ITEM_CHARS, digest_line, fit, safe_url
from monitor.errors import ChannelError, ChannelFailure
from monitor.records import Alert, Digest
from monitor.severity import Severity
from tests.slack_server import (  # noqa: F401  (slack_server_fixture: the fixture)
    TOKEN,
    WEBHOOK_PATH,
    SlackServer,
    slack_server_fixture,
)

T = TypeVar("T")
PUBLISHED = datetime(2024, 11, 17, 18, 5, tzinfo=UTC)
URL = "https://news.example/2024/11/atacms?ref=a&b=c"
HOSTILE = "<!channel> <!here> <@U123> <https://evil.example|bank.com> & co"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make_alert(**changes: Any) -> Alert:
    values: dict[str, Any] = {
        "rule_id": "long-range-strike-policy",
        "rule_title": "Policy shift on long-range weapons",
        "severity": Severity.HIGH,
        "channel": "desk-slack",
        "story_id": "story-1",
        "article_title": "Biden authorises Ukraine to strike Russia with ATACMS missiles",
        "article_url": URL,
        "source": "Reuters",
        "published": PUBLISHED,
        "snippet": "The US has authorised Ukraine to use ATACMS missiles inside Russia.",
        "matched_terms": ("ATACMS", "authorised"),
    }
    values.update(changes)
    return Alert(**values)


def webhook_channel(server: SlackServer, **extra: Any) -> SlackChannel:
    settings = SlackChannelSettings(type="slack", webhook_url=server.webhook_url(),
                                    timeout=extra.pop("timeout", "2s"), **extra)
    channel = SlackChannel("desk-slack", settings)
    channel.pace = 0.0
    return channel


def api_channel(server: SlackServer, **extra: Any) -> SlackChannel:
    values: dict[str, Any] = {"token": TOKEN, "channel": "#news-alerts",
                              "api_url": server.api_url, "timeout": "2s"}
    values.update(extra)
    channel = SlackChannel("desk-slack", SlackChannelSettings(type="slack", **values))
    channel.pace = 0.0
    return channel


def texts(message: dict[str, Any]) -> list[str]:
    """The fallback text and every text inside the blocks."""
    found = [message["text"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks", []))
    return found


def sections(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]


def send_error(channel: SlackChannel, alert: Alert | None = None,
               thread: str | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        run(channel.send(alert or make_alert(), thread))
    return caught.value


# -- messages -------------------------------------------------------------------------------


def test_a_webhook_message_is_block_kit_with_a_fallback_text(slack_server: SlackServer) -> None:
    assert run(webhook_channel(slack_server).send(make_alert())) is None

    [request] = slack_server.hooks
    message = request.body
    assert request.path == WEBHOOK_PATH
    assert "[HIGH] Policy shift on long-range weapons" in message["text"]
    assert "Biden authorises Ukraine" in message["text"]
    assert message["unfurl_links"] is False
    body = "\n".join(texts(message)[1:])
    assert "*[HIGH] Policy shift on long-range weapons*" in body
    assert ("<https://news.example/2024/11/atacms?ref=a&amp;b=c|Biden authorises Ukraine to"
            " strike Russia with ATACMS missiles>") in body
    assert "Reuters" in body
    assert "2024-11-17 18:05 UTC" in body
    assert "*authorised* Ukraine to use *ATACMS* missiles" in body
    assert "matched: ATACMS, authorised" in body
    assert "long-range-strike-policy" in body
    assert {b["type"] for b in message["blocks"]} == {"section", "context"}


def test_the_web_api_posts_to_the_configured_channel_with_the_bearer_token_and_returns_ts(
    slack_server: SlackServer,
) -> None:
    ts = run(api_channel(slack_server).send(make_alert()))

    [request] = slack_server.posts
    assert request.header("Authorization") == f"Bearer {TOKEN}"
    assert request.body["channel"] == "#news-alerts"
    assert "thread_ts" not in request.body
    assert sections(request.body)[0] == ":red_circle: *[HIGH] Policy shift on long-range weapons*"
    assert ts == "1700000001.000001"


def test_the_web_api_is_preferred_when_a_webhook_is_configured_too(
    slack_server: SlackServer,
) -> None:
    channel = api_channel(slack_server, webhook_url=slack_server.webhook_url())
    assert run(channel.send(make_alert())) is not None
    assert len(slack_server.posts) == 1
    assert slack_server.hooks == []


def test_a_follow_up_with_a_thread_is_posted_into_that_thread(slack_server: SlackServer) -> None:
    channel = api_channel(slack_server)
    parent = run(channel.send(make_alert()))
    follow_up = make_alert(kind="follow_up", source="AP", article_url="https://ap.example/atacms",
                           article_title="Ukraine may now use ATACMS")
    reply = run(channel.send(follow_up, thread=parent))

    request = slack_server.posts[1]
    assert request.body["thread_ts"] == parent
    assert request.body["text"] == "Also reported by AP: Ukraine may now use ATACMS"
    assert sections(request.body)[0] == (
        "Also reported by *AP*: <https://ap.example/atacms|Ukraine may now use ATACMS>")
    assert reply is not None
    assert reply != parent


def test_a_first_alert_is_never_posted_into_a_thread(slack_server: SlackServer) -> None:
    run(api_channel(slack_server).send(make_alert(), thread="1700000000.000001"))
    [request] = slack_server.posts
    assert "thread_ts" not in request.body


@pytest.mark.parametrize("route", ["webhook", "api"])
def test_a_follow_up_without_a_thread_says_which_alert_it_follows(
    slack_server: SlackServer, route: str
) -> None:
    channel = webhook_channel(slack_server) if route == "webhook" else api_channel(slack_server)
    follow_up = make_alert(kind="follow_up", source="AP",
                           article_title="Ukraine may now use ATACMS")
    run(channel.send(follow_up, thread="1700000000.000009" if route == "webhook" else None))

    [message] = slack_server.messages
    assert "thread_ts" not in message
    assert message["text"].startswith("Follow-up to the Policy shift on long-range weapons alert")
    assert "Also reported by AP: Ukraine may now use ATACMS" in message["text"]
    body = "\n".join(texts(message)[1:])
    assert "follows the earlier *Policy shift on long-range weapons* alert" in body
    assert "story-1" in body


@pytest.mark.parametrize(("route", "kind", "thread"), [
    ("webhook", "alert", None), ("webhook", "follow_up", None),
    ("api", "follow_up", "1700000000.000001"), ("api", "follow_up", None),
])
def test_hostile_internet_text_arrives_escaped_in_every_block_and_in_the_text(
    slack_server: SlackServer, route: str, kind: str, thread: str | None
) -> None:
    alert = make_alert(
        kind=kind,
        rule_title="Rule " + HOSTILE,
        article_title="Breaking " + HOSTILE + "\n\x1b[31mred\x00",
        source="Wire " + HOSTILE,
        snippet="Summary " + HOSTILE + " then ATACMS",
        matched_terms=("ATACMS", "<!channel>", "& co"),
        story_id="story <!here>",
    )
    channel = webhook_channel(slack_server) if route == "webhook" else api_channel(slack_server)
    run(channel.send(alert, thread))

    [message] = slack_server.messages
    safe = "https://news.example/2024/11/atacms?ref=a&amp;b=c"
    for text in texts(message):
        assert "<!" not in text
        assert "<@" not in text
        assert "<https://evil" not in text
        assert "\x1b" not in text
        assert "\x00" not in text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text
        # the only markup links are ours, to the article
        assert re.findall(r"<([^|>]*)\|", text) == [safe] * text.count("<")
    everything = "\n".join(texts(message))
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt;" in everything
    assert "&lt;https://evil.example|bank.com&gt; &amp; co" in everything


def test_links_are_made_only_from_http_urls_with_their_special_characters_encoded(
    slack_server: SlackServer,
) -> None:
    assert safe_url("https://news.example/a|b<c>d?x=1&y=2") == (
        "https://news.example/a%7Cb%3Cc%3Ed?x=1&amp;y=2")
    assert safe_url("HTTP://news.example/a b") == "HTTP://news.example/a%20b"
    for bad in ("javascript:alert(1)", "data:text/html,<b>", "file:///etc/passwd", "//x.example",
                "https://[broken", "", None):
        assert safe_url(bad) is None

    run(webhook_channel(slack_server).send(make_alert(article_url="javascript:alert(1)")))
    [message] = slack_server.messages
    body = "\n".join(texts(message)[1:])
    assert "<" not in body
    assert "*Biden authorises Ukraine to strike Russia with ATACMS missiles*" in body


def test_an_alert_with_enormous_fields_still_fits_slack_limits(slack_server: SlackServer) -> None:
    alert = make_alert(article_title="<&> " * 3000, source="S&" * 2000, rule_title="R<" * 900,
                       snippet="ATACMS & more " * 5000, matched_terms=("ATACMS", "more") * 300,
                       article_url="https://news.example/" + "a" * 5000)
    assert run(api_channel(slack_server).send(alert)) is not None  # the server checks limits too

    [request] = slack_server.posts
    for text in texts(request.body):
        assert len(text) <= 3000
        assert not re.search(r"&(?!amp;|lt;|gt;)", text)
    assert sections(request.body)[2].endswith("…”")


def test_a_text_template_replaces_the_default_body_and_is_escaped(
    slack_server: SlackServer,
) -> None:
    template = "{{ severity|upper }} {{ rule_id }}: {{ title }} <{{ url }}>"
    channel = api_channel(slack_server, templates={"text": template})
    run(channel.send(make_alert(article_title="Strike <!channel> & more")))

    [request] = slack_server.posts
    expected = ("HIGH long-range-strike-policy: Strike &lt;!channel&gt; &amp; more"
                " &lt;https://news.example/2024/11/atacms?ref=a&amp;b=c&gt;")
    assert request.body["text"] == expected
    assert request.body["blocks"] == [{"type": "section",
                                       "text": {"type": "mrkdwn", "text": expected}}]


def test_a_text_template_that_fails_to_render_falls_back_to_the_default_message(
    slack_server: SlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    channel = webhook_channel(slack_server, templates={"text": "{{ no_such_variable }}"})
    run(channel.send(make_alert()))

    [message] = slack_server.messages
    assert sections(message)[0] == ":red_circle: *[HIGH] Policy shift on long-range weapons*"
    assert "text template failed" in caplog.text


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["webhook", "api"])
def test_a_429_with_retry_after_seconds_is_rate_limited_and_not_retried_by_the_sdk(
    slack_server: SlackServer, route: str
) -> None:
    slack_server.rate_limit("17", api=route == "api")
    channel = webhook_channel(slack_server) if route == "webhook" else api_channel(slack_server)
    error = send_error(channel)

    assert error.kind is ChannelFailure.RATE_LIMITED
    assert error.retry_after == 17
    assert not error.permanent
    assert len(slack_server.requests) == 1


@pytest.mark.parametrize("route", ["webhook", "api"])
def test_a_429_with_an_http_date_is_rate_limited_until_that_date(
    slack_server: SlackServer, route: str
) -> None:
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    slack_server.rate_limit(date, api=route == "api")
    channel = webhook_channel(slack_server) if route == "webhook" else api_channel(slack_server)
    error = send_error(channel)

    assert error.kind is ChannelFailure.RATE_LIMITED
    assert error.retry_after is not None
    assert 100 < error.retry_after <= 120


@pytest.mark.parametrize("route", ["webhook", "api"])
def test_a_retry_after_of_a_day_is_capped_at_300_seconds(
    slack_server: SlackServer, route: str
) -> None:
    slack_server.rate_limit("86400", api=route == "api")
    channel = webhook_channel(slack_server) if route == "webhook" else api_channel(slack_server)
    assert send_error(channel).retry_after == MAX_RETRY_AFTER == 300


def test_ok_false_ratelimited_is_rate_limited(slack_server: SlackServer) -> None:
    slack_server.slack_error("ratelimited", headers={"Retry-After": "5"})
    error = send_error(api_channel(slack_server))
    assert (error.kind, error.retry_after, error.reason) == (
        ChannelFailure.RATE_LIMITED, 5, "Slack said ratelimited")


def test_retry_after_accepts_seconds_and_http_dates_and_ignores_garbage() -> None:
    now = datetime(2015, 10, 21, 7, 27, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds(" 1.5 ", now) == 1.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now) == 60
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0
    assert retry_after_seconds("Thu, 22 Oct 2015 07:28:00 GMT", now) == 300
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("-5", now) is None
    assert retry_after_seconds(None, now) is None


@pytest.mark.parametrize(("error", "kind"), [
    ("invalid_auth", ChannelFailure.AUTH),
    ("not_authed", ChannelFailure.AUTH),
    ("token_revoked", ChannelFailure.AUTH),
    ("missing_scope", ChannelFailure.AUTH),
    ("account_inactive", ChannelFailure.AUTH),
    ("channel_not_found", ChannelFailure.CLIENT),
    ("not_in_channel", ChannelFailure.CLIENT),
    ("is_archived", ChannelFailure.CLIENT),
])
def test_credential_and_channel_errors_are_permanent(
    slack_server: SlackServer, error: str, kind: ChannelFailure
) -> None:
    slack_server.slack_error(error)
    failure = send_error(api_channel(slack_server))
    assert (failure.kind, failure.permanent, failure.reason) == (kind, True, f"Slack said {error}")
    assert str(failure) == f"channel desk-slack: Slack said {error}"


def test_a_wrong_token_is_a_permanent_auth_error(slack_server: SlackServer) -> None:
    failure = send_error(api_channel(slack_server, token="xoxb-wrong"))
    assert (failure.kind, failure.permanent) == (ChannelFailure.AUTH, True)


def test_an_unknown_channel_is_a_permanent_client_error(slack_server: SlackServer) -> None:
    slack_server.channels = {"#elsewhere"}
    failure = send_error(api_channel(slack_server))
    assert (failure.kind, failure.permanent) == (ChannelFailure.CLIENT, True)
    assert failure.reason == "Slack said channel_not_found"


@pytest.mark.parametrize(("route", "status", "body", "reason"), [
    ("api", 500, {"ok": False, "error": "internal_error"}, "Slack said internal_error"),
    ("api", 200, {"ok": False, "error": "fatal_error"}, "Slack said fatal_error"),
    ("api", 503, "<html><body>Service Unavailable</body></html>", "HTTP 503 from the Slack API"),
    ("api", 200, "<html>a captive portal</html>", "non-JSON reply (HTTP 200) from the Slack API"),
    ("api", 200, '{"ok": tru', "non-JSON reply (HTTP 200) from the Slack API"),
    ("webhook", 500, "rollup_error", "HTTP 500 from the webhook (rollup_error)"),
    ("webhook", 502, "<html>Bad Gateway</html>", "HTTP 502 from the webhook"),
])
def test_server_errors_and_non_json_replies_are_transient(
    slack_server: SlackServer, route: str, status: int, body: Any, reason: str
) -> None:
    slack_server.fail_next(status, body)
    channel = webhook_channel(slack_server) if route == "webhook" else api_channel(slack_server)
    failure = send_error(channel)
    assert (failure.kind, failure.permanent, failure.reason) == (
        ChannelFailure.SERVER, False, reason)


@pytest.mark.parametrize(("status", "body", "kind", "permanent"), [
    (404, "no_service", ChannelFailure.CLIENT, True),
    (404, "channel_not_found", ChannelFailure.CLIENT, True),
    (410, "channel_is_archived", ChannelFailure.CLIENT, True),
    (403, "invalid_token", ChannelFailure.AUTH, True),
    (403, "action_prohibited", ChannelFailure.AUTH, True),
    (400, "invalid_payload", ChannelFailure.CLIENT, False),
])
def test_a_dead_webhook_is_permanent_and_a_bad_request_is_not(
    slack_server: SlackServer, status: int, body: str, kind: ChannelFailure, permanent: bool
) -> None:
    slack_server.fail_next(status, body)
    failure = send_error(webhook_channel(slack_server))
    assert (failure.kind, failure.permanent) == (kind, permanent)
    assert failure.reason == f"HTTP {status} from the webhook ({body})"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(("route", "where"), [("webhook", "the webhook"),
                                               ("api", "the Slack API")])
def test_a_dropped_connection_is_a_connect_error_and_the_sdk_does_not_retry_it(
    slack_server: SlackServer, route: str, where: str
) -> None:
    slack_server.fail_next(drop=True)
    channel = webhook_channel(slack_server) if route == "webhook" else api_channel(slack_server)
    failure = send_error(channel)
    assert (failure.kind, failure.permanent) == (ChannelFailure.CONNECT, False)
    assert failure.reason == f"{where} closed the connection"
    assert len(slack_server.requests) == 1


def test_a_refused_connection_is_a_connect_error() -> None:
    settings = SlackChannelSettings(type="slack", timeout="2s",
                                    webhook_url=f"http://127.0.0.1:{_closed_port()}/hooks/x")
    failure = send_error(SlackChannel("desk-slack", settings))
    assert (failure.kind, failure.permanent) == (ChannelFailure.CONNECT, False)
    assert failure.reason == "the webhook refused the connection"


@pytest.mark.parametrize("route", ["webhook", "api"])
def test_a_server_that_does_not_answer_in_time_is_a_timeout(
    slack_server: SlackServer, route: str
) -> None:
    slack_server.fail_next(200, "ok", delay=1.0)
    channel = (webhook_channel(slack_server, timeout="0.2s") if route == "webhook"
               else api_channel(slack_server, timeout="0.2s"))
    started = time.monotonic()
    failure = send_error(channel)
    assert failure.kind is ChannelFailure.TIMEOUT
    assert time.monotonic() - started < 0.9


def test_a_reply_trickling_in_is_cut_off_by_the_total_deadline(slack_server: SlackServer) -> None:
    # each byte comes sooner than the socket timeout, so only the deadline can stop it
    slack_server.fail_next(200, "ok  ", trickle=0.15)
    channel = webhook_channel(slack_server, timeout="0.3s")

    async def timed() -> tuple[ChannelError, float]:
        started = time.monotonic()
        with pytest.raises(ChannelError) as caught:
            await channel.send(make_alert())
        return caught.value, time.monotonic() - started

    failure, elapsed = run(timed())  # (asyncio.run then waits for the abandoned worker)
    assert failure.kind is ChannelFailure.TIMEOUT
    assert failure.reason == "no reply from Slack within 0.3 s"
    assert elapsed < 0.45


def test_a_channel_with_neither_webhook_nor_token_fails_permanently_without_sending(
    slack_server: SlackServer,
) -> None:
    channel = SlackChannel("desk-slack", SlackChannelSettings(type="slack", channel="#x"))
    failure = send_error(channel)
    assert (failure.kind, failure.permanent) == (ChannelFailure.CLIENT, True)
    assert slack_server.requests == []


def test_building_a_channel_sends_nothing(slack_server: SlackServer) -> None:
    api_channel(slack_server)
    webhook_channel(slack_server)
    assert slack_server.requests == []
    assert SlackChannel.pace == 1.0


def test_errors_and_logs_never_contain_the_token_or_the_webhook_url(
    slack_server: SlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_path = "/hooks/services/T0000/B0000/SECRETpathXYZ"
    port = _closed_port()
    errors: list[ChannelError] = []

    def attempt(channel: SlackChannel) -> None:
        errors.append(send_error(channel))

    # replies that echo the secrets back at us
    slack_server.fail_next(404, slack_server.webhook_url())
    attempt(webhook_channel(slack_server))
    slack_server.fail_next(500, f"<html>token {TOKEN} url {secret_path}</html>")
    attempt(api_channel(slack_server))
    slack_server.slack_error(f"invalid_auth {TOKEN}")
    attempt(api_channel(slack_server))
    slack_server.fail_next(200, "ok", delay=0.5)
    attempt(webhook_channel(slack_server, timeout="0.1s"))
    for url in (f"http://127.0.0.1:{port}{secret_path}", f"ftp://127.0.0.1{secret_path}",
                f"http://[::1{secret_path}"):
        attempt(SlackChannel("desk-slack", SlackChannelSettings(type="slack", webhook_url=url)))
    attempt(api_channel(slack_server, api_url=f"http://127.0.0.1:{port}/api/"))

    assert len(errors) == 8
    for error in errors:
        for text in (str(error), error.reason, repr(error.args)):
            assert TOKEN not in text
            assert "SECRETpath" not in text
            assert slack_server.base not in text
        assert error.__cause__ is None
        assert error.__suppress_context__
    assert TOKEN not in caplog.text
    assert "SECRETpath" not in caplog.text


# -- digests --------------------------------------------------------------------------------


def make_digest(count: int, rules: int, title: str = "Story {i:03d}: a headline about ATACMS",
                ) -> Digest:
    alerts = tuple(
        make_alert(
            rule_id=f"rule-{i % rules:03d}",
            rule_title=f"Rule number {i % rules} <&>",
            story_id=f"story-{i}",
            article_title=title.format(i=i),
            article_url=f"https://news.example/story/{i}?a=1&b=2",
            source=f"Outlet {i % 7}",
            kind="follow_up" if i % 5 == 4 else "alert",
        )
        for i in range(count)
    )
    return Digest("desk-slack", alerts, since=PUBLISHED - timedelta(days=1), until=PUBLISHED)


def check_parts(messages: list[dict[str, Any]], count: int) -> list[str]:
    """Assert Slack's limits and item integrity; return every digest line, in order."""
    lines: list[str] = []
    for number, message in enumerate(messages, 1):
        assert len(message["blocks"]) <= 50
        header = message["blocks"][0]
        assert header["type"] == "header"
        assert f"(part {number} of {len(messages)})" in header["text"]["text"]
        assert f"(part {number} of {len(messages)})" in message["text"]
        assert f"{count} alerts" in message["text"]
        assert not sections(message)[-1].split("\n")[-1].startswith("*Rule")  # no lone heading
        for text in sections(message):
            assert len(text) <= 3000
            for line in text.split("\n"):
                # never cut inside an item or its markup
                assert line.count("<") == line.count(">") <= 1, line
                assert line.count("*") % 2 == 0, line
                assert not re.search(r"&(?!amp;|lt;|gt;)", line), line
                lines.append(line)
    return lines


def test_a_digest_of_200_alerts_is_split_into_parts_within_slack_limits(
    slack_server: SlackServer,
) -> None:
    run(api_channel(slack_server).send_digest(make_digest(200, rules=120)))

    messages = [r.body for r in slack_server.posts]
    assert len(messages) > 1
    assert {m["channel"] for m in messages} == {"#news-alerts"}
    assert all("thread_ts" not in m for m in messages)
    lines = check_parts(messages, 200)
    for i in range(200):
        headline = f"Story {i:03d}: a headline about ATACMS"
        assert sum(line.count(headline) for line in lines) == 1, headline
    item = next(line for line in lines if "Story 000:" in line)
    assert item == ("• <https://news.example/story/0?a=1&amp;b=2|Story 000: a headline about"
                    " ATACMS> (Outlet 0, 2024-11-17 18:05 UTC)")
    assert any(line.startswith("↳ <https://news.example/story/4?") for line in lines)
    assert "*Rule number 0 &lt;&amp;&gt; [high] — 2*" in lines


def test_a_digest_of_long_items_is_split_by_size_and_repeats_the_rule_heading(
    slack_server: SlackServer,
) -> None:
    title = "Story {i:03d}: " + "a long & winding headline " * 20
    run(webhook_channel(slack_server).send_digest(make_digest(200, rules=2, title=title)))

    messages = slack_server.messages
    assert len(messages) > 2
    lines = check_parts(messages, 200)
    for i in range(200):
        assert sum(line.count(f"Story {i:03d}: ") for line in lines) == 1
    for message in messages[1:]:
        assert sections(message)[0].startswith("*Rule number")
    assert any("(continued)*" in line for line in lines)


def test_a_digest_item_too_long_by_itself_is_shortened_with_an_ellipsis(
    slack_server: SlackServer,
) -> None:
    giant = make_alert(article_title="&" * 5000, source="<" * 900)
    line = digest_line(giant)
    assert len(line) <= MAX_ITEM_CHARS
    assert line.startswith("• <https://news.example/2024/11/atacms?ref=a&amp;b=c|&amp;")
    assert "…>" in line
    assert line.count("<") == line.count(">") == 1
    assert fit("&" * 10, 14) == "&amp;&amp;…"

    digest = Digest("desk-slack", (giant, make_alert()), since=None, until=PUBLISHED)
    run(webhook_channel(slack_server).send_digest(digest))
    [message] = slack_server.messages
    assert "(part" not in message["text"]
    assert "…>" in "\n".join(sections(message))


def test_an_empty_digest_sends_nothing(slack_server: SlackServer) -> None:
    for channel in (webhook_channel(slack_server), api_channel(slack_server)):
        run(channel.send_digest(Digest("desk-slack", (), since=None, until=PUBLISHED)))
    assert slack_server.requests == []


def test_a_digest_retried_after_a_failed_part_resumes_after_the_parts_already_sent(
    slack_server: SlackServer,
) -> None:
    channel = webhook_channel(slack_server)
    digest = make_digest(200, rules=120)
    slack_server.fail_next(200, "ok")  # part 1 arrives
    slack_server.fail_next(503, "")  # part 2 does not
    with pytest.raises(ChannelError):
        run(channel.send_digest(digest))
    run(channel.send_digest(digest))

    delivered = [m for i, m in enumerate(slack_server.messages) if i != 1]
    lines = check_parts(delivered, 200)
    for i in range(200):
        assert sum(line.count(f"Story {i:03d}:") for line in lines) == 1


def test_digest_parts_are_paced(slack_server: SlackServer) -> None:
    channel = webhook_channel(slack_server)
    channel.pace = 0.05
    started = time.monotonic()
    run(channel.send_digest(make_digest(200, rules=120)))
    parts = len(slack_server.messages)
    assert parts > 1
    assert time.monotonic() - started >= 0.05 * (parts - 1)
