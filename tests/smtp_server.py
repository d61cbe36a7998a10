"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

``mail_server`` is a fixture factory: ``mail_server(**aiosmtpd_options)`` starts a
server and returns a ``MailServer`` with its port and ``recorder``; all stop at
teardown.
The ``Recorder`` refuses chosen recipients, MAIL FROM or DATA on request, and
``fail_data = N`` answers the next N messages with 451 (try again later).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    secure: bool
    authenticated: bool
    peer: tuple[str, int]  # the client's address and port: one per SMTP connection

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None
        assert body.get_content_type() == f"text/{subtype}"
        content: str = body.get_content()
        return content.replace("\r\n", "\n")


@dataclass
class Recorder:
    """aiosmtpd handler: keeps every message; refuses chosen senders, recipients, data."""

    received: list[Received] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    mail_reply: str | None = None
    data_reply: str | None = None
    fail_data: int = 0  # answer the next N messages with 451
    quits: list[tuple[str, int]] = field(default_factory=list)  # peers that said QUIT
    rset_delay: float = 0.0  # seconds before answering RSET
    hung_up_in_rset: list[tuple[str, int]] = field(default_factory=list)

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            await asyncio.sleep(self.rset_delay)
        except asyncio.CancelledError:  # aiosmtpd cancels the session when the client hangs up
            host, port = session.peer[:2]
            self.hung_up_in_rset.append((host, port))
            raise
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        host, port = session.peer[:2]
        self.quits.append((host, port))
        return "221 Bye"

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        if self.fail_data > 0:
            self.fail_data -= 1
            return "451 4.3.0 Try again later"
        content = envelope.original_content
        assert isinstance(content, bytes)
        assert envelope.mail_from is not None
        assert server.transport is not None
        secure = server.transport.get_extra_info("ssl_object") is not None
        host, port = session.peer[:2]
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), content,
                                      secure, bool(session.authenticated), (host, port)))
        return "250 Message accepted"


@dataclass
class MailServer:
    port: int
    recorder: Recorder

    @property
    def received(self) -> list[Received]:
        return self.recorder.received


MailServerFactory = Callable[..., MailServer]


@pytest.fixture
def mail_server() -> Iterator[MailServerFactory]:
    """Start aiosmtpd servers on 127.0.0.1 (options go to aiosmtpd); all stop at teardown."""
    controllers: list[Controller] = []

    def start(**options: Any) -> MailServer:
        recorder = Recorder()
        port = free_port()
        controller = Controller(recorder, hostname="127.0.0.1", port=port,
                                        server_hostname="mx.test", **options)
        controller.start()
        controllers.append(controller)
        return MailServer(port, recorder)

    try:
        yield start
    finally:
        for controller in controllers:
            controller.stop()
