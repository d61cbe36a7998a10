"""Black-box: text from the internet never becomes markup; secrets never come out.

Written from DESIGN.md ("Promises"), HAZARDS.md (Slack escaping, email headers) and
docs/configuration.md (channels, secrets, webhook signatures) only. One ``run --once``
reads a feed of headlines built to inject markup, and alerts an email channel (a real
aiosmtpd server), a Slack incoming webhook, a signed webhook, and a Slack webhook whose
secret URL answers 404. The secrets come from the environment and from a systemd
credential file; none of them may appear in the logs or in ``newsmon status``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.blackbox_support import (
    Reply,
    Request,
    Result,
    WebServer,
    newsmon,
    once_per_session,
    rfc822,
    rss,
)

NOW = time.time()
SLACK_SECRET_PATH = "/hooks/services/T0B0/SECRETslackPATH123"
DEAD_SECRET_PATH = "/hooks/services/T9B9/SECRETdeadPATH456"
SIGNING_SECRET = "whsec-SECRET-signing-789"
SECRETS = ["SECRETslackPATH123", "SECRETdeadPATH456", SIGNING_SECRET]

RULE = """\
id: sanctions
title: Sanctions
severity: high
query: sanctions
notify: [mail, slack, signed, dead-slack, limited, throttled, critical-only]
dedupe: {scope: article}
examples:
  match: ["new sanctions"]
  no_match: ["markets"]
"""

PING = "<!channel> sanctions <@U0ADMIN> <https://evil.example|click here>"
INJECT = "Sanctions news&#13;&#10;Bcc: victim@example.org&#13;&#10;X-Evil: 1"
HTML_TEXT = "&lt;script&gt;alert(1)&lt;/script&gt; sanctions &lt;b&gt;bold&lt;/b&gt;"


class Mailbox:
    """aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: SMTP, session: Session,
                          envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class Cycle:
    result: Result
    status_json: Result
    status_text: Result
    mails: list[EmailMessage]
    envelopes: list[tuple[str, list[str]]]
    slack: list[Request]
    signed: list[Request]
    others: dict[str, list[Request]]

    def outbox(self, channel: str) -> dict[str, int]:
        status = json.loads(self.status_json.stdout)
        found: dict[str, int] = next(c for c in status["channels"]
                                     if c["name"] == channel)["outbox"]
        return found


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory) -> Cycle:
    return once_per_session(tmp_path_factory, "markup", lambda: observe(tmp_path_factory))


def observe(tmp_path_factory: pytest.TempPathFactory) -> Cycle:
    folder: Path = tmp_path_factory.mktemp("markup")
    (folder / "rules").mkdir()
    (folder / "rules" / "sanctions.yaml").write_text(RULE)
    credentials = folder / "credentials"
    credentials.mkdir()
    (credentials / "NEWSMON_CHANNELS__SIGNED__SECRET").write_text(SIGNING_SECRET)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with WebServer() as web:
            web.routes[SLACK_SECRET_PATH] = Reply(200, b"ok", content_type="text/plain")
            web.routes["/limited"] = Reply(429, b"rate_limited", {"Retry-After": "1"},
                                           content_type="text/plain")
            web.routes["/feed.xml"] = Reply(body=rss([
                {"title": PING, "link": "http://x.example/1", "guid": "m1",
                 "pubDate": rfc822(NOW - 60), "description": "Ping attempt."},
                {"title": INJECT, "link": "http://x.example/2", "guid": "m2",
                 "pubDate": rfc822(NOW - 50), "description": "Header injection attempt."},
                {"title": "Markup in summary about sanctions", "link": "http://x.example/3",
                 "guid": "m3", "pubDate": rfc822(NOW - 40),
                 "description": f"<![CDATA[<p>{HTML_TEXT}</p>]]>"},
                {"title": "Script link sanctions", "link": "javascript:alert(document.cookie)",
                 "guid": "m4", "pubDate": rfc822(NOW - 30), "description": "A bad link."},
            ]))
            (folder / "newsmon.toml").write_text(f"""
[storage]
url = "sqlite:///state.db"
[rules]
paths = ["rules"]
[[sources]]
name = "tricks"
url = "{web.url('/feed.xml')}"
interval = "10m"
[channels.mail]
type = "email"
host = "127.0.0.1"
port = {controller.port}
security = "none"
sender = "newsmon@example.org"
to = ["desk@example.org"]
[channels.slack]
type = "slack"
[channels.dead-slack]
type = "slack"
[channels.signed]
type = "webhook"
url = "{web.url('/hook')}"
[channels.limited]
type = "slack"
webhook_url = "{web.url('/limited')}"
[channels.throttled]
type = "webhook"
url = "{web.url('/hook-throttled')}"
throttle = "1/1h"
[channels.critical-only]
type = "webhook"
url = "{web.url('/hook-critical')}"
min_severity = "critical"
""")
            env = {"NEWSMON_CHANNELS__SLACK__WEBHOOK_URL": web.url(SLACK_SECRET_PATH),
                   "NEWSMON_CHANNELS__DEAD_SLACK__WEBHOOK_URL": web.url(DEAD_SECRET_PATH),
                   "CREDENTIALS_DIRECTORY": str(credentials)}
            result = newsmon("run", "--once", "--config", "newsmon.toml", cwd=folder, env=env)
            status_js = newsmon("status", "--json", "--config", "newsmon.toml", cwd=folder,
                                env=env)
            status_tx = newsmon("status", "--config", "newsmon.toml", cwd=folder, env=env)
            slack = [r for r in web.requests if r.path == SLACK_SECRET_PATH]
            others = {path: [r for r in web.requests if r.path == path]
                      for path in ("/limited", "/hook-throttled", "/hook-critical")}
            signed = [r for r in web.requests if r.path == "/hook"]
            return Cycle(result, status_js, status_tx, list(mailbox.messages),
                        list(mailbox.envelopes), slack, signed, others)
    finally:
        controller.stop()


def test_every_channel_that_works_gets_all_four_alerts(cycle: Cycle) -> None:
    assert cycle.result.rc == 0, cycle.result.stderr
    assert len(cycle.mails) == 4, cycle.result.stderr
    assert len(cycle.slack) == 4, cycle.result.stderr
    assert len(cycle.signed) == 4, cycle.result.stderr


def slack_texts(cycle: Cycle) -> list[str]:
    return [r.body.decode() for r in cycle.slack]


def test_slack_special_sequences_in_a_headline_are_escaped(cycle: Cycle) -> None:
    ping = [t for t in slack_texts(cycle) if "U0ADMIN" in t]
    assert len(ping) == 1
    body = json.dumps(json.loads(ping[0]))  # any string in the payload
    for raw in ("<!channel>", "<@U0ADMIN>", "<https://evil.example|"):
        assert raw not in body, body
    assert "&lt;!channel&gt;" in body


def test_a_newline_in_a_title_never_becomes_an_email_header(cycle: Cycle) -> None:
    for message in cycle.mails:
        assert message["Bcc"] is None, message.as_string()[:800]
        assert message["X-Evil"] is None, message.as_string()[:800]
    assert all(recipients == ["desk@example.org"] for _sender, recipients in cycle.envelopes)
    subjects = [str(m["Subject"]) for m in cycle.mails]
    assert any("Sanctions news" in s for s in subjects), subjects
    assert all("\n" not in s and "\r" not in s for s in subjects), subjects


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, message.as_string()[:500]
    return str(part.get_content())


def test_html_from_a_summary_is_escaped_in_the_email(cycle: Cycle) -> None:
    mail = next(m for m in cycle.mails if "Markup in summary" in str(m["Subject"]))
    html = html_part(mail)
    assert "<script>" not in html, html
    assert "<b>bold</b>" not in html, html
    assert "&lt;script&gt;" in html or "&lt;b&gt;" in html, html


def test_a_javascript_link_never_becomes_a_clickable_link(cycle: Cycle) -> None:
    mail = next(m for m in cycle.mails if "Script link" in str(m["Subject"]))
    assert 'href="javascript:' not in html_part(mail).lower()
    slack = next(t for t in slack_texts(cycle) if "Script link" in t)
    assert "<javascript:" not in slack.lower(), slack


def test_webhook_body_is_signed_with_the_secret_from_a_credential_file(cycle: Cycle) -> None:
    for request in cycle.signed:
        timestamp = request.headers["x-newsmon-timestamp"]
        expected = hmac.new(SIGNING_SECRET.encode(), timestamp.encode() + b"." + request.body,
                            hashlib.sha256).hexdigest()
        assert request.headers["x-newsmon-signature"] == f"sha256={expected}"
        body: dict[str, Any] = json.loads(request.body)
        assert request.headers["idempotency-key"] == body["key"]


def test_a_failing_channel_is_reported_without_its_secret_url(cycle: Cycle) -> None:
    lines = cycle.result.lines("dead-slack")
    assert lines, cycle.result.stderr
    assert any("404" in line for line in lines), lines


def test_secrets_never_appear_in_logs_or_status(cycle: Cycle) -> None:
    assert cycle.status_json.rc == 0
    assert cycle.status_text.rc == 0
    everything = "\n".join([cycle.result.stdout, cycle.result.stderr, cycle.status_json.stdout,
                            cycle.status_json.stderr, cycle.status_text.stdout,
                            cycle.status_text.stderr])
    for secret in SECRETS:
        assert secret not in everything, secret


def test_status_shows_the_failing_channel_and_its_error(cycle: Cycle) -> None:
    status = json.loads(cycle.status_json.stdout)
    dead = next(c for c in status["channels"] if c["name"] == "dead-slack")
    assert dead["error"], dead
    assert "404" in dead["error"], dead
    assert dead["outbox"]["sent"] == 0, dead


def test_a_429_from_a_slack_webhook_is_retried_not_taken_as_sent(cycle: Cycle) -> None:
    assert len(cycle.others["/limited"]) == 1  # the later alerts wait behind the first
    outbox = cycle.outbox("limited")
    assert outbox["sent"] == 0, outbox
    assert outbox["failed"] == 0, outbox
    assert outbox["pending"] + outbox["deferred"] == 4, outbox


def test_a_throttled_channel_defers_what_is_over_its_limit_and_drops_nothing(
        cycle: Cycle) -> None:
    assert len(cycle.others["/hook-throttled"]) == 1
    outbox = cycle.outbox("throttled")
    assert outbox["sent"] == 1, outbox
    assert outbox["deferred"] + outbox["pending"] + outbox["held"] == 3, outbox


def test_a_channel_ignores_alerts_below_its_min_severity(cycle: Cycle) -> None:
    assert cycle.others["/hook-critical"] == []
