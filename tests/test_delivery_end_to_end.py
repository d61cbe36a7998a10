"""Issue 3's promise end to end: Slack and email down for a while, then back.

The daemon runs in-process on a fake clock against a real feed server, a fake
Slack speaking its webhook shape, and a real SMTP server (aiosmtpd). Both
channels fail for their first attempts; afterwards every alert must have
arrived exactly once per channel, and a hostile headline must arrive inert.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from monitor.channel_settings import EmailChannelSettings, SlackChannelSettings
from monitor.channels.registry import build_channels
from monitor.config import Settings, resolve_paths
from monitor.daemon import Daemon
from monitor.rules.load import load_rules
from monitor.store import Store
from tests.conftest import RULES, SEEDS, FeedServer
from tests.slack_server import SlackServer
from tests.slack_server import slack_server_fixture as slack_server_fixture
from tests.smtp_server import MailServerFactory
from tests.smtp_server import mail_server as mail_server

HOSTILE_ITEM = """
<item>
  <title>&lt;!channel&gt; Biden authorises ATACMS strikes inside Russia &lt;@U123&gt; &amp;
    &lt;https://evil.example|bank.com&gt; Bcc: victim@example.org</title>
  <link>http://wire.example/hostile</link>
  <guid>hostile-1</guid>
  <pubDate>Sun, 17 Nov 2024 23:00:00 GMT</pubDate>
  <description>&lt;script&gt;alert(1)&lt;/script&gt; The US cleared ATACMS strikes
    inside Russia.</description>
</item>
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_alerts_arrive_once_per_channel_after_both_channels_recover(
    tmp_path: Path, feed_server: FeedServer, slack_server: SlackServer,
    mail_server: MailServerFactory,
) -> None:
    wire = (SEEDS / "feeds" / "wire.xml").read_text()
    wire = wire.replace("</channel>", HOSTILE_ITEM + "</channel>")
    url = feed_server.serve("/wire.xml", wire.encode())
    mail = mail_server()
    mail.recorder.fail_data = 3  # the first three messages: 451, try again later
    slack_server.fail_next(500, times=2)
    slack_server.fail_next(429, headers={"Retry-After": "30"})

    settings = resolve_paths(Settings(
        storage={"url": f"sqlite:///{tmp_path / 'state.db'}"},  # type: ignore[arg-type]
        rules={"paths": [str(RULES)]},  # type: ignore[arg-type]
        defaults={"max_age": "off", "channels": ["slack", "mail"]},  # type: ignore[arg-type]
        sources=[{"name": "seed-wire", "url": url}],  # type: ignore[list-item]
        channels={
            "slack": SlackChannelSettings(type="slack",
                                          webhook_url=SecretStr(slack_server.webhook_url())),
            "mail": EmailChannelSettings(type="email", host="127.0.0.1", port=mail.port,
                                         security="none", sender="newsmon@example.org",
                                         to=["desk@example.org"]),
        },
    ), tmp_path)
    clock = Clock()

    async def go() -> list[Any]:
        channels = build_channels({n: settings.channels[n] for n in ("slack", "mail")})
        for channel in channels.values():
            channel.pace = 0.0  # type: ignore[misc]  # no need to wait a real second here
        async with httpx.AsyncClient() as client:
            daemon = Daemon(settings, load_rules(settings.rules.paths),
                            Store(settings.storage.url), client, channels, clock)
            await daemon.start()
            reports = []
            try:
                for _ in range(12):
                    reports.append(await daemon.run_once())
                    clock.now += timedelta(minutes=5)
            finally:
                await daemon.close()
            return reports

    reports = asyncio.run(go())
    planned = reports[0].polls[0].alerts
    assert planned == 14  # 7 alerts (the seed feed's 6 and the hostile one) x 2 channels
    assert reports[0].delivery.retrying == 2  # both channels failed at first
    assert sum(r.delivery.sent for r in reports) == planned

    accepted = slack_server.messages[3:]  # the first three requests were answered 500, 500, 429
    assert slack_server.messages[0] == slack_server.messages[2]  # the same alert, retried
    slack_texts = [m["text"] for m in accepted]
    assert len(slack_texts) == len(set(slack_texts)) == planned // 2
    hostile = next(m for m in accepted if "ATACMS strikes inside" in m["text"])
    raw = str(hostile)
    assert "&lt;!channel&gt;" in raw
    for live in ("<!channel>", "<@U123>", "<https://evil.example|bank.com>"):
        assert live not in raw

    messages = [message_from_bytes(r.data, policy=policy.default) for r in mail.received]
    ids = [m["Message-ID"] for m in messages]
    assert len(ids) == len(set(ids)) == planned // 2
    evil = next(m for m in messages if "ATACMS strikes inside" in str(m["Subject"]))
    assert evil["Bcc"] is None
    assert {r for r in mail.received for r in r.rcpt_tos} == {"desk@example.org"}
    html = evil.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html

    store = Store(settings.storage.url).open()
    counts = {(c.channel, c.status): c.count for c in store.outbox_counts.counts()}
    store.close()
    assert counts == {("mail", "sent"): planned // 2, ("slack", "sent"): planned // 2}
