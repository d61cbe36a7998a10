"""The email channel against real SMTP servers on 127.0.0.1.

aiosmtpd plays the mail server (plain, STARTTLS with a trustme CA, implicit TLS,
AUTH); a few raw socket servers in threads misbehave on purpose (a greeting
trickled one byte every 2 s, answers that each arrive just inside the
per-operation timeout, a connection dropped after the message was accepted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import render
from monitor.channel_settings import EmailChannelSettings
from monitor.channels import email_message
from monitor.channels.email import EmailChannel
from monitor.errors import ChannelError, ChannelFailure
from monitor.records import Alert, Digest
from monitor.severity import Severity
from tests.smtp_server import MailServer, MailServerFactory, free_port
from tests.smtp_server import mail_server as mail_server

T = TypeVar("T")

SENDER = "newsmon@example.org"
DESK = "desk@example.org"
PASSWORD = "s3cret-Passw0rd"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make_alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "rule_id": "eu-sanctions",
        "rule_title": "New sanctions package",
        "severity": Severity.HIGH,
        "channel": "desk-email",
        "story_id": "story-1",
        "article_title": "EU adopts a new sanctions package against the shadow fleet",
        "article_url": "https://news.example.org/eu-sanctions",
        "source": "seed-wire",
        "published": datetime(2025, 5, 20, 9, 30, tzinfo=UTC),
        "snippet": "The EU adopted a new sanctions package targeting the shadow fleet.",
        "matched_terms": ("sanctions package", "shadow fleet"),
    }
    fields.update(changes)
    return Alert(**fields)


def make_settings(port: int, **changes: Any) -> EmailChannelSettings:
    data: dict[str, Any] = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": SENDER,
        "to": [DESK],
        "timeout": "5s",
    }
    data.update(changes)
    return EmailChannelSettings.model_validate(data)


def send(channel: EmailChannel, alert: Alert, thread: str | None = None) -> str | None:
    return run(channel.send(alert, thread))


def send_error(channel: EmailChannel, alert: Alert | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        send(channel, alert or make_alert())
    return caught.value


# -- an aiosmtpd server that records what it receives ----------------------------------


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: object) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"newsmon"
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    server_context: ssl.SSLContext


@pytest.fixture(scope="module")
def trusted_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def certs(trusted_ca: trustme.CA, tmp_path: Path) -> Certificates:
    """A server certificate for 127.0.0.1 from a private CA, and that CA as a PEM file."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trusted_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    trusted_ca.cert_pem.write_to_path(str(ca_file))
    return Certificates(ca_file, context)


@pytest.fixture
def plain_server(mail_server: MailServerFactory) -> MailServer:
    return mail_server()


# -- raw socket servers that misbehave ---------------------------------------------------


class RawServer:
    """A TCP server in a thread running ``serve(connection, stop)`` for each client."""

    def __init__(self, serve: Callable[[socket.socket, threading.Event], None]) -> None:
        self.serve = serve
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self.workers: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=self._handle, args=(connection,), daemon=True)
            worker.start()
            self.workers.append(worker)

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(0.05)
            with contextlib.suppress(OSError):  # the client hung up: what these servers provoke
                self.serve(connection, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.acceptor.join()
        for worker in self.workers:
            worker.join()
        self.listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]],
                                      RawServer]]:
    servers: list[RawServer] = []

    def start(serve: Callable[[socket.socket, threading.Event], None]) -> RawServer:
        servers.append(RawServer(serve))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.close()


def _read_line(connection: socket.socket, stop: threading.Event, buffer: bytearray) -> bytes:
    while b"\n" not in buffer:
        if stop.is_set():
            return b""
        try:
            chunk = connection.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            return b""
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line + b"\n"


def scripted_smtp(delay: float = 0.0, answer_quit: bool = True,
                  messages: list[bytes] | None = None
                  ) -> Callable[[socket.socket, threading.Event], None]:
    """A minimal SMTP server: every reply ``delay`` seconds late; QUIT maybe unanswered."""

    def serve(connection: socket.socket, stop: threading.Event) -> None:
        buffer = bytearray()
        if stop.wait(delay):
            return
        connection.sendall(b"220 raw.test ESMTP\r\n")
        while line := _read_line(connection, stop, buffer):
            command = line[:4].upper()
            if stop.wait(delay):
                return
            if command == b"QUIT":
                if answer_quit:
                    connection.sendall(b"221 Bye\r\n")
                return  # else: hang up without a word
            if command == b"DATA":
                connection.sendall(b"354 Go ahead\r\n")
                body = b""
                while (chunk := _read_line(connection, stop, buffer)) not in (b".\r\n", b""):
                    body += chunk
                if messages is not None:
                    messages.append(body)
                connection.sendall(b"250 Queued\r\n")
            else:
                connection.sendall(b"250 raw.test\r\n")

    return serve


def trickle(connection: socket.socket, stop: threading.Event) -> None:
    """Accept, then send the greeting one byte every 2 s."""
    for byte in b"220 trickle.test ESMTP\r\n":
        connection.sendall(bytes([byte]))
        if stop.wait(2.0):
            return


# -- the message ---------------------------------------------------------------------


def test_an_alert_arrives_as_one_email_with_a_text_and_an_html_part(
    plain_server: MailServer,
) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))
    alert = make_alert()

    message_id = send(channel, alert)

    [got] = plain_server.received
    assert got.mail_from == SENDER
    assert got.rcpt_tos == [DESK]
    message = got.message
    assert message["Subject"] == (
        "[newsmon] HIGH: New sanctions package — "
        "EU adopts a new sanctions package against the shadow fleet"
    )
    assert message["From"] == SENDER
    assert message["To"] == DESK
    assert message["Date"] is not None
    assert message["Message-ID"] == message_id == f"<{alert.key}@example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert got.part("plain").strip() == render.plain_text(alert)
    page = got.part("html")
    assert ('<a href="https://news.example.org/eu-sanctions">EU adopts a new sanctions package'
            " against the shadow fleet</a>") in page
    assert "<b>sanctions package</b>" in page
    assert "<b>shadow fleet</b>" in page


def test_every_configured_recipient_gets_the_message(plain_server: MailServer) -> None:
    to = [DESK, "Night Desk <night@example.org>"]
    channel = EmailChannel("desk-email", make_settings(plain_server.port, to=to))

    send(channel, make_alert())

    [got] = plain_server.received
    assert got.rcpt_tos == [DESK, "night@example.org"]
    addresses = [a.addr_spec for a in got.message["To"].addresses]
    assert addresses == [DESK, "night@example.org"]


def test_a_resend_of_the_same_alert_keeps_its_message_id_and_another_alert_gets_another(
    plain_server: MailServer,
) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))

    first = send(channel, make_alert())
    again = send(channel, make_alert())
    other = send(channel, make_alert(story_id="story-2"))

    ids = [r.message["Message-ID"] for r in plain_server.received]
    assert ids == [first, again, other]
    assert first == again
    assert other != first


def test_a_follow_up_replies_to_the_parent_message(plain_server: MailServer) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))
    parent = send(channel, make_alert())
    follow_up = make_alert(kind="follow_up", article_identity="a-2", source="other-wire",
                           article_title="Shadow fleet tankers face new EU sanctions")

    reply = send(channel, follow_up, thread=parent)

    message = plain_server.received[1].message
    assert reply not in (None, parent)
    assert message["In-Reply-To"] == parent
    assert message["References"] == parent
    assert message["Subject"] == (
        "Re: [newsmon] HIGH: New sanctions package — Shadow fleet tankers face new EU sanctions"
    )


def test_a_thread_id_that_is_not_a_message_id_is_ignored(plain_server: MailServer) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))

    send(channel, make_alert(kind="follow_up"), thread="1712345678.000100\r\nBcc: x@y.z")

    message = plain_server.received[0].message
    assert message["In-Reply-To"] is None
    assert message["Bcc"] is None


def test_html_in_a_summary_is_escaped_in_the_html_part(plain_server: MailServer) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))
    alert = make_alert(
        snippet='<script>alert("x")</script> a new sanctions package <img src=x onerror=y>',
        article_title="<b>Breaking</b> & more",
    )

    send(channel, alert)

    page = plain_server.received[0].part("html")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;b&gt;Breaking&lt;/b&gt; &amp; more" in page
    assert "<b>sanctions package</b>" in page


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,<script>x</script>", "ftp://example.org/x"]
)
def test_only_http_urls_become_links(plain_server: MailServer, url: str) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))

    send(channel, make_alert(article_url=url))

    page = plain_server.received[0].part("html")
    assert "href=" not in page
    assert "<script" not in page


def test_a_newline_in_a_headline_creates_no_header_and_no_recipient(
    plain_server: MailServer,
) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))
    alert = make_alert(article_title="Breaking\r\nBcc: victim@example.org\r\n\r\nbody",
                       source="wire\nX-Injected: yes", rule_title="Rule\x00\x1b[31m")

    send(channel, alert)

    [got] = plain_server.received
    assert got.rcpt_tos == [DESK]
    message = got.message
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert message["Subject"] == (
        "[newsmon] HIGH: Rule [31m — Breaking Bcc: victim@example.org body"
    )
    assert b"\nBcc:" not in got.data


def test_non_ascii_text_round_trips_encoded_in_headers_and_parts(
    plain_server: MailServer,
) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))
    headline = "Zelenskyj’s “shadow fleet” — Straße"
    alert = make_alert(article_title=headline, rule_title="Sanktionen: Ölpreis",
                       snippet="Die Schattenflotte („shadow fleet“) wächst")

    send(channel, alert)

    [got] = plain_server.received
    assert got.data.isascii()  # RFC 2047 headers, quoted-printable UTF-8 parts
    assert b"=?utf-8?" in got.data.split(b"\r\n\r\n", 1)[0].lower()
    assert got.message["Subject"] == f"[newsmon] HIGH: Sanktionen: Ölpreis — {headline}"
    assert headline in got.part("plain")
    assert "„<b>shadow fleet</b>“) wächst" in got.part("html")


def test_templates_override_subject_text_and_html(plain_server: MailServer) -> None:
    templates = {
        "subject": "{{ severity|upper }} {{ title }}",
        "text": "Headline: {{ title }}\nWhy: {{ why }}",
        "html": "<p>{{ title }}</p>",
    }
    channel = EmailChannel("desk-email",
                           make_settings(plain_server.port, templates=templates))

    send(channel, make_alert(article_title="<i>Storm Shadow</i> approved"))

    got = plain_server.received[0]
    assert got.message["Subject"] == "HIGH <i>Storm Shadow</i> approved"
    assert got.part("plain").startswith("Headline: <i>Storm Shadow</i> approved\nWhy: matched:")
    assert got.part("html").strip() == "<p>&lt;i&gt;Storm Shadow&lt;/i&gt; approved</p>"


def test_a_failing_template_sends_the_default_and_says_so(
    plain_server: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    templates = {"subject": "{{ no_such_variable }}"}
    channel = EmailChannel("desk-email",
                           make_settings(plain_server.port, templates=templates))

    with caplog.at_level(logging.WARNING, logger="newsmon.channels.email"):
        send(channel, make_alert())

    assert plain_server.received[0].message["Subject"].startswith("[newsmon] HIGH: ")
    assert "templates.subject failed" in caplog.text


def test_a_rendering_failure_still_sends_the_alert_as_plain_ascii(
    plain_server: MailServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = email_message._alert_html

    def breaks_on_non_ascii(alert: Alert, subject: str) -> str:
        if not alert.article_title.isascii():
            raise UnicodeError("a rendering bug")
        return real(alert, subject)

    monkeypatch.setattr(email_message, "_alert_html", breaks_on_non_ascii)
    channel = EmailChannel("desk-email", make_settings(plain_server.port))
    alert = make_alert(article_title="Zelenskyj’s fleet")

    with caplog.at_level(logging.ERROR, logger="newsmon.channels.email"):
        message_id = send(channel, alert)

    [got] = plain_server.received
    assert message_id == got.message["Message-ID"] == f"<{alert.key}@example.org>"
    assert "Zelenskyj\\u2019s fleet" in got.message["Subject"]
    assert "cannot render alert" in caplog.text


@settings(max_examples=150, deadline=None)
@given(title=st.text(), source=st.text(), rule_title=st.text(), snippet=st.text(),
       url=st.one_of(st.none(), st.text()))
def test_no_internet_text_can_add_a_header_or_break_the_message(
    title: str, source: str, rule_title: str, snippet: str, url: str | None
) -> None:
    alert = make_alert(article_title=title, source=source, rule_title=rule_title,
                       snippet=snippet, article_url=url, kind="follow_up")
    config = make_settings(25)
    env = email_message.envelope(config)

    built = email_message.alert_message(alert, config, env, now=datetime.now(UTC),
                                        thread="<parent@example.org>")
    data = built.as_bytes()

    assert data.isascii()
    parsed = message_from_bytes(data, policy=policy.default)
    assert sorted(k.lower() for k in parsed) == sorted([
        "subject", "from", "to", "date", "message-id", "auto-submitted", "x-newsmon-rule",
        "in-reply-to", "references", "mime-version", "content-type",
    ])
    assert "\n" not in str(parsed["Subject"])
    assert "\r" not in str(parsed["Subject"])


# -- digests -------------------------------------------------------------------------


def make_digest() -> Digest:
    alerts = (
        make_alert(),
        make_alert(kind="follow_up", article_identity="a-2", source="<other> wire",
                   article_url="javascript:evil()"),
        make_alert(rule_id="long-range", rule_title="Policy shift <on> long-range weapons",
                   story_id="story-9", article_title="ATACMS use authorised"),
    )
    return Digest("desk-email", alerts, since=datetime(2025, 5, 20, 8, tzinfo=UTC),
                  until=datetime(2025, 5, 21, 8, tzinfo=UTC))


def test_a_digest_is_one_email_grouped_by_rule(plain_server: MailServer) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))
    digest = make_digest()

    run(channel.send_digest(digest))
    run(channel.send_digest(digest))

    first, second = plain_server.received
    message = first.message
    assert message["Subject"] == "[newsmon] digest: 3 alerts, 2 rules"
    assert message["Message-ID"] == second.message["Message-ID"]
    assert message["Message-ID"].startswith("<digest-")
    assert first.part("plain").strip() == render.digest_text(digest)
    page = first.part("html")
    assert page.count("<h2>") == 2
    assert "Policy shift &lt;on&gt; long-range weapons [high] — 1" in page
    assert "New sanctions package [high] — 2" in page
    assert "(&lt;other&gt; wire," in page
    assert "javascript" not in page


def test_an_empty_digest_sends_nothing(plain_server: MailServer) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port))

    run(channel.send_digest(Digest("desk-email", (), since=None, until=datetime.now(UTC))))

    assert plain_server.received == []


# -- TLS and AUTH --------------------------------------------------------------------


def test_starttls_upgrades_and_verifies_the_server_against_ca_file(
    mail_server: MailServerFactory, certs: Certificates
) -> None:
    server = mail_server(tls_context=certs.server_context, require_starttls=True)
    channel = EmailChannel("desk-email", make_settings(
        server.port, security="starttls", ca_file=str(certs.ca_file)))

    send(channel, make_alert())

    [got] = server.received
    assert got.secure


def test_starttls_not_offered_is_a_permanent_error(plain_server: MailServer) -> None:
    channel = EmailChannel("desk-email", make_settings(plain_server.port, security="starttls"))

    error = send_error(channel)

    assert (error.kind, error.permanent) == (ChannelFailure.CLIENT, True)
    assert "STARTTLS" in error.reason
    assert plain_server.received == []


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_an_untrusted_certificate_is_a_permanent_error(
    mail_server: MailServerFactory, certs: Certificates, security: str
) -> None:
    if security == "tls":
        server = mail_server(ssl_context=certs.server_context)
    else:
        server = mail_server(tls_context=certs.server_context, require_starttls=True)
    channel = EmailChannel("desk-email", make_settings(server.port, security=security))

    error = send_error(channel)  # no ca_file: the system store does not know the private CA

    assert (error.kind, error.permanent) == (ChannelFailure.CLIENT, True)
    assert "certificate" in error.reason
    assert server.received == []


def test_implicit_tls_delivers(mail_server: MailServerFactory, certs: Certificates) -> None:
    server = mail_server(ssl_context=certs.server_context)
    channel = EmailChannel("desk-email", make_settings(
        server.port, security="tls", ca_file=str(certs.ca_file)))

    send(channel, make_alert())

    [got] = server.received
    assert got.secure


def _auth_server(mail_server: MailServerFactory, certs: Certificates) -> MailServer:
    return mail_server(tls_context=certs.server_context, require_starttls=True,
                       authenticator=authenticator, auth_required=True, auth_require_tls=True)


def test_auth_with_the_right_password_delivers(
    mail_server: MailServerFactory, certs: Certificates
) -> None:
    server = _auth_server(mail_server, certs)
    channel = EmailChannel("desk-email", make_settings(
        server.port, security="starttls", ca_file=str(certs.ca_file),
        username="newsmon", password=PASSWORD))

    send(channel, make_alert())

    [got] = server.received
    assert got.authenticated
    assert got.secure


def test_a_wrong_password_is_a_permanent_auth_error_that_never_shows_the_password(
    mail_server: MailServerFactory, certs: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    server = _auth_server(mail_server, certs)
    wrong = "wr0ng-" + PASSWORD
    channel = EmailChannel("desk-email", make_settings(
        server.port, security="starttls", ca_file=str(certs.ca_file),
        username="newsmon", password=wrong))

    with caplog.at_level(logging.DEBUG):
        error = send_error(channel)

    assert (error.kind, error.permanent) == (ChannelFailure.AUTH, True)
    assert "535" in error.reason
    assert wrong not in str(error)
    assert wrong not in caplog.text
    assert server.received == []


def test_auth_without_tls_on_a_server_that_requires_it_is_a_permanent_auth_error(
    mail_server: MailServerFactory, certs: Certificates
) -> None:
    server = _auth_server(mail_server, certs)
    channel = EmailChannel("desk-email", make_settings(
        server.port, security="none", username="newsmon", password=PASSWORD))

    error = send_error(channel)

    assert (error.kind, error.permanent) == (ChannelFailure.AUTH, True)
    assert PASSWORD not in str(error)


# -- refusals and failures -----------------------------------------------------------


def test_a_refused_connection_is_a_transient_connect_error() -> None:
    channel = EmailChannel("desk-email", make_settings(free_port()))

    error = send_error(channel)

    assert (error.kind, error.permanent) == (ChannelFailure.CONNECT, False)


@pytest.mark.parametrize(
    ("reply", "kind", "permanent"),
    [("550 5.1.1 No such user", ChannelFailure.CLIENT, True),
     ("450 4.2.1 Mailbox busy", ChannelFailure.SERVER, False)],
)
def test_every_recipient_refused_is_permanent_for_5xx_and_transient_for_4xx(
    plain_server: MailServer, reply: str, kind: ChannelFailure, permanent: bool
) -> None:
    other = "night@example.org"
    plain_server.recorder.refuse_rcpt = {DESK: reply, other: reply}
    channel = EmailChannel("desk-email", make_settings(plain_server.port, to=[DESK, other]))

    error = send_error(channel)

    assert (error.kind, error.permanent) == (kind, permanent)
    assert DESK in error.reason
    assert other in error.reason
    assert plain_server.received == []


def test_one_refused_recipient_of_two_does_not_raise_and_the_other_gets_the_message(
    plain_server: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    plain_server.recorder.refuse_rcpt = {"gone@example.org": "550 5.1.1 No such user"}
    channel = EmailChannel("desk-email",
                           make_settings(plain_server.port, to=["gone@example.org", DESK]))

    with caplog.at_level(logging.WARNING, logger="newsmon.channels.email"):
        message_id = send(channel, make_alert())

    [got] = plain_server.received
    assert got.rcpt_tos == [DESK]
    assert got.message["Message-ID"] == message_id
    [record] = caplog.records
    assert "gone@example.org" in record.getMessage()
    assert "550" in record.getMessage()


@pytest.mark.parametrize(
    ("reply", "kind", "permanent"),
    [("553 5.7.1 Sender not allowed", ChannelFailure.CLIENT, True),
     ("451 4.3.0 Try again later", ChannelFailure.SERVER, False)],
)
def test_a_refused_sender_is_permanent_for_5xx_and_transient_for_4xx(
    plain_server: MailServer, reply: str, kind: ChannelFailure, permanent: bool
) -> None:
    plain_server.recorder.mail_reply = reply
    channel = EmailChannel("desk-email", make_settings(plain_server.port))

    error = send_error(channel)

    assert (error.kind, error.permanent) == (kind, permanent)
    assert reply[:3] in error.reason


def test_a_4xx_reply_to_the_message_is_a_transient_server_error(
    plain_server: MailServer,
) -> None:
    plain_server.recorder.data_reply = "451 4.3.0 Queue full"
    channel = EmailChannel("desk-email", make_settings(plain_server.port))

    error = send_error(channel)

    assert (error.kind, error.permanent) == (ChannelFailure.SERVER, False)


def test_a_server_trickling_its_greeting_times_out_within_the_deadline(
    raw_server: Callable[..., RawServer],
) -> None:
    server = raw_server(trickle)
    channel = EmailChannel("desk-email", make_settings(server.port, timeout="1s"))

    started = time.monotonic()
    error = send_error(channel)
    elapsed = time.monotonic() - started

    assert (error.kind, error.permanent) == (ChannelFailure.TIMEOUT, False)
    assert elapsed < 1.5


def test_a_server_answering_each_command_just_in_time_still_hits_the_total_deadline(
    raw_server: Callable[..., RawServer],
) -> None:
    server = raw_server(scripted_smtp(delay=0.6))  # each reply inside a 1 s per-read timeout
    channel = EmailChannel("desk-email", make_settings(server.port, timeout="1s"))

    started = time.monotonic()
    error = send_error(channel)
    elapsed = time.monotonic() - started

    assert (error.kind, error.permanent) == (ChannelFailure.TIMEOUT, False)
    assert elapsed < 1.5


def test_a_server_that_hangs_up_after_accepting_the_message_is_a_success(
    raw_server: Callable[..., RawServer],
) -> None:
    messages: list[bytes] = []
    server = raw_server(scripted_smtp(answer_quit=False, messages=messages))
    channel = EmailChannel("desk-email", make_settings(server.port, timeout="2s"))

    message_id = send(channel, make_alert())

    assert message_id is not None
    assert len(messages) == 1


@pytest.mark.parametrize(
    "changes", [{"host": ""}, {"to": []}, {"sender": "not an address"}, {"to": ["nobody"]}]
)
def test_a_channel_without_a_usable_address_or_host_fails_permanently(
    changes: dict[str, Any],
) -> None:
    channel = EmailChannel("desk-email", make_settings(25, **changes))

    error = send_error(channel)

    assert (error.kind, error.permanent) == (ChannelFailure.CLIENT, True)


def test_close_does_nothing_harmful_and_the_channel_follows_the_protocol() -> None:
    channel = EmailChannel("desk-email", make_settings(25))

    run(channel.close())

    assert channel.name == "desk-email"
    assert channel.pace == 0.0
