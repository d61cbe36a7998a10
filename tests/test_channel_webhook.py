"""The webhook and apprise channels against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from monitor.channel_settings import AppriseChannelSettings, WebhookChannelSettings
from monitor.channels.apprise_channel import AppriseChannel
from monitor.channels.webhook import WebhookChannel
from monitor.errors import ChannelError, ChannelFailure
from monitor.records import Alert, Digest, Span
from monitor.severity import Severity
from tests.conftest import FeedServer, Route

HOSTILE = "<!channel> Biden & <@U123> authorise <https://evil.example|bank.com>"


def alert(title: str = "Biden authorises ATACMS strikes") -> Alert:
    return Alert(rule_id="long-range", rule_title="Policy shift", severity=Severity.HIGH,
                 channel="hook", story_id="story-1", article_title=title,
                 article_url="http://wire.example/a", source="seed-wire",
                 published=datetime(2024, 11, 17, 21, 40, tzinfo=UTC),
                 snippet="…cleared Ukraine to fire ATACMS…", matched_terms=("ATACMS",),
                 spans=(Span("content", 30, 36, "ATACMS"),), article_identity="a1")


def webhook(server: FeedServer, secret: str | None = None) -> WebhookChannel:
    settings = WebhookChannelSettings(
        type="webhook", url=SecretStr(server.url("/hook/T0KEN")),
        secret=SecretStr(secret) if secret else None)
    return WebhookChannel("hook", settings)


def send(channel: WebhookChannel | AppriseChannel, item: Alert) -> str | None:
    async def go() -> str | None:
        try:
            return await channel.send(item)
        finally:
            await channel.close()

    return asyncio.run(go())


def test_a_webhook_alert_is_json_with_the_rule_article_and_why(feed_server: FeedServer) -> None:
    key = send(webhook(feed_server), alert())
    (request,) = feed_server.requests_to("/hook/T0KEN")
    body = json.loads(request.body)
    assert body["type"] == "alert"
    assert body["rule"] == {"id": "long-range", "title": "Policy shift", "severity": "high"}
    assert body["article"]["title"] == "Biden authorises ATACMS strikes"
    assert body["article"]["published"] == "2024-11-17T21:40:00+00:00"
    assert body["why"]["terms"] == ["ATACMS"]
    assert body["why"]["spans"] == [{"field": "content", "start": 30, "end": 36,
                                     "text": "ATACMS"}]
    assert body["story_id"] == "story-1"
    assert request.headers["Idempotency-Key"] == key == alert().key


def test_a_webhook_with_a_secret_is_signed_over_timestamp_and_body(
    feed_server: FeedServer,
) -> None:
    send(webhook(feed_server, secret="s3cret"), alert())
    (request,) = feed_server.requests_to("/hook/T0KEN")
    stamp = request.headers["X-Newsmon-Timestamp"]
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + request.body, hashlib.sha256)
    assert request.headers["X-Newsmon-Signature"] == "sha256=" + expected.hexdigest()


def test_hostile_text_travels_as_data_not_markup(feed_server: FeedServer) -> None:
    send(webhook(feed_server), alert(HOSTILE))
    body = json.loads(feed_server.requests_to("/hook/T0KEN")[0].body)
    assert body["article"]["title"] == HOSTILE  # JSON-encoded, for the receiver to escape


@pytest.mark.parametrize(
    ("status", "kind", "permanent"),
    [(500, ChannelFailure.SERVER, False), (503, ChannelFailure.SERVER, False),
     (400, ChannelFailure.CLIENT, False), (401, ChannelFailure.AUTH, True),
     (404, ChannelFailure.CLIENT, True), (410, ChannelFailure.CLIENT, True)],
)
def test_webhook_failures_are_classified(feed_server: FeedServer, status: int,
                                         kind: ChannelFailure, permanent: bool) -> None:
    feed_server.script("/hook/T0KEN", Route(status=status, body=b"no"))
    with pytest.raises(ChannelError) as caught:
        send(webhook(feed_server), alert())
    assert (caught.value.kind, caught.value.permanent) == (kind, permanent)
    assert "T0KEN" not in str(caught.value)


def test_a_429_carries_its_retry_after_capped(feed_server: FeedServer) -> None:
    feed_server.script("/hook/T0KEN", Route(status=429, headers={"Retry-After": "86400"}))
    with pytest.raises(ChannelError) as caught:
        send(webhook(feed_server), alert())
    assert caught.value.kind is ChannelFailure.RATE_LIMITED
    assert caught.value.retry_after == 300


def test_an_unreachable_webhook_is_a_transient_connect_error() -> None:
    settings = WebhookChannelSettings(type="webhook", url=SecretStr("http://127.0.0.1:9/x"))
    with pytest.raises(ChannelError) as caught:
        send(WebhookChannel("hook", settings), alert())
    assert caught.value.kind is ChannelFailure.CONNECT
    assert not caught.value.permanent


def test_a_webhook_digest_is_one_post_with_every_alert(feed_server: FeedServer) -> None:
    channel = webhook(feed_server)
    digest = Digest("hook", (alert("one"), alert("two")), None,
                    datetime(2026, 11, 26, 8, tzinfo=UTC))

    async def go() -> None:
        await channel.send_digest(digest)
        await channel.close()

    asyncio.run(go())
    (request,) = feed_server.requests_to("/hook/T0KEN")
    body = json.loads(request.body)
    assert body["type"] == "digest"
    assert [a["article"]["title"] for a in body["alerts"]] == ["one", "two"]


def test_apprise_delivers_through_its_json_service(feed_server: FeedServer) -> None:
    port = feed_server.base.rsplit(":", 1)[1]
    settings = AppriseChannelSettings(type="apprise",
                                      urls=[SecretStr(f"json://127.0.0.1:{port}/apprise")])
    send(AppriseChannel("ntfy", settings), alert())
    (request,) = feed_server.requests_to("/apprise")
    body = json.loads(request.body)
    assert body["title"] == "[HIGH] Policy shift"
    assert "Biden authorises ATACMS strikes" in body["message"]
    assert "matched: ATACMS" in body["message"]


def test_apprise_failure_is_a_transient_channel_error(feed_server: FeedServer) -> None:
    port = feed_server.base.rsplit(":", 1)[1]
    feed_server.script("/apprise", Route(status=500))
    settings = AppriseChannelSettings(type="apprise",
                                      urls=[SecretStr(f"json://127.0.0.1:{port}/apprise")])
    with pytest.raises(ChannelError) as caught:
        send(AppriseChannel("ntfy", settings), alert())
    assert caught.value.kind is ChannelFailure.SERVER
