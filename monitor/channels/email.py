"""Channel *email*: one SMTP transaction per alert or digest (stage *deliver*'s endpoint).

A connection is kept open for ``_KEEP_IDLE`` seconds after a message (at most
``_MAX_PER_CONNECTION`` messages), so a burst of alerts costs one connect, TLS
handshake and login, not one per alert. Before a kept connection carries a message
it must answer RSET; one that does not (the server timed it out meanwhile) is
dropped and a new one opened, so a message is never sent over a connection that
may already be dead, and a failure during the send itself is never retried here.

The message comes from ``email_message`` (where internet text is made safe for
headers and HTML); this module moves it with aiosmtplib and turns every way an
SMTP send can fail into a ``ChannelError`` of a known kind:

    refused AUTH (5xx)                  AUTH     permanent   (4xx: transient)
    STARTTLS required but not offered   CLIENT   permanent
    TLS certificate / handshake refused CLIENT   permanent
    connection refused, reset, closed   CONNECT  transient
    deadline or any timeout             TIMEOUT  transient
    any 4xx reply                       SERVER   transient
    5xx to MAIL FROM, DATA, EHLO        CLIENT   permanent
    5xx greeting (no service for us)    SERVER   permanent
    every recipient refused             CLIENT   permanent if all 5xx, else SERVER transient
    some recipients refused             no error: delivered to the others; a warning names them

A total deadline (``settings.timeout``) bounds the whole conversation, because a
server that answers every command just inside a per-operation timeout would
otherwise hold a send for minutes. Once the server has accepted the message the
send has succeeded: a QUIT that fails or runs out of time is not an error (a
retry would send the message twice).

It must not decide whether to send, touch the store, or let the password reach
a reason or a log line (reasons are built from redacted text).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosmtplib

from monitor import render
from monitor.channel_settings import ChannelTemplates, EmailChannelSettings
from monitor.channels import email_message
from monitor.errors import ChannelError, ChannelFailure
from monitor.logs import about
from monitor.records import Alert, Digest

log = logging.getLogger("newsmon.channels.email")

_QUIT_GRACE = 2.0  # seconds at most for a polite QUIT after the message was accepted
# Far below the 5 minutes RFC 5321 asks servers to wait, and below what busy relays
# allow; long enough for the alerts one poll files.
_KEEP_IDLE = 10.0
_MAX_PER_CONNECTION = 100  # relays commonly cap messages per session about here
_PROBE = 3.0  # seconds for a kept connection to answer RSET before a new one is opened
_MAX_REPLY = 200  # characters of a server reply kept in a reason


@dataclass(eq=False)
class _Kept:
    """An open, idle SMTP session and the task that will close it."""

    smtp: aiosmtplib.SMTP
    loop: asyncio.AbstractEventLoop
    sent: int
    closer: asyncio.Task[None] | None = None


class EmailChannel:
    """Sends each alert as one email; ``send`` returns its Message-ID for threading."""

    pace = 0.0

    def __init__(self, name: str, settings: EmailChannelSettings) -> None:
        self.name = name
        self._settings = settings
        self._tls: ssl.SSLContext | None = None  # built on first use (reads files)
        self._local_hostname: str | None = None  # EHLO name, looked up on first use
        self._kept: _Kept | None = None  # taken by one send at a time, given back after

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        env = self._envelope()
        now = datetime.now(UTC)
        try:
            message = email_message.alert_message(
                alert, self._settings, env, now=now, thread=thread, channel=self.name)
            data = message.as_bytes()
        except Exception:  # a rendering bug may cost the looks, never the alert
            log.exception("channel %s: cannot render alert %s; sending it as plain ASCII",
                          self.name, alert.key, extra=about(channel=self.name, rule=alert.rule_id))
            plain = self._settings.model_copy(update={"templates": ChannelTemplates()})
            message = email_message.alert_message(
                email_message.ascii_alert(alert), plain, env, now=now, thread=thread,
                channel=self.name)
            data = message.as_bytes()
        await self._send(data, env, str(message["Message-ID"]))
        return str(message["Message-ID"])

    async def send_digest(self, digest: Digest) -> None:
        if not digest.alerts:
            return
        env = self._envelope()
        message = email_message.digest_message(digest, self._settings, env, now=datetime.now(UTC))
        await self._send(message.as_bytes(), env, str(message["Message-ID"]))

    async def close(self) -> None:
        """Say QUIT on the kept connection, if there is one."""
        kept, self._kept = self._kept, None
        if kept is not None:
            if kept.closer is not None:
                kept.closer.cancel()
            if kept.loop is asyncio.get_running_loop():
                await _quit(kept.smtp, kept.loop.time() + _QUIT_GRACE)
            else:
                _drop(kept.smtp, kept.smtp.transport)

    # -- transport ---------------------------------------------------------------------

    def _envelope(self) -> email_message.Envelope:
        if not self._settings.configured():
            raise self._error("not configured: host, sender and to are needed",
                              ChannelFailure.CLIENT, permanent=True)
        try:
            return email_message.envelope(self._settings)
        except ValueError as exc:
            raise self._error(str(exc), ChannelFailure.CLIENT, permanent=True) from None

    async def _send(self, data: bytes, env: email_message.Envelope, message_id: str) -> None:
        timeout = self._settings.timeout.total_seconds()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        smtp: aiosmtplib.SMTP | None = None
        try:
            async with asyncio.timeout_at(deadline):
                smtp, sent_before = await self._reusable()
                if smtp is None:
                    smtp = await self._client(timeout)
                    await self._open(smtp)
                refused, _reply = await smtp.sendmail(env.sender, env.recipients, data)
        except BaseException as exc:
            if smtp is not None:
                _drop(smtp, smtp.transport)
            if isinstance(exc, Exception) and not isinstance(exc, ChannelError):
                raise self._failure(exc, timeout) from None  # every failure gets a kind
            raise
        if refused:
            log.warning(
                "channel %s: message %s delivered to %d of %d recipients; refused: %s",
                self.name, message_id, len(env.recipients) - len(refused),
                len(env.recipients),
                "; ".join(f"{address} ({self._reply(r.code, r.message)})"
                          for address, r in refused.items()),
                extra=about(channel=self.name),
            )
        await self._keep(smtp, sent_before + 1, min(deadline, loop.time() + _QUIT_GRACE))

    async def _reusable(self) -> tuple[aiosmtplib.SMTP | None, int]:
        """The kept connection if it still answers, with its count of messages; or None."""
        kept, self._kept = self._kept, None
        if kept is None:
            return None, 0
        if kept.closer is not None:
            kept.closer.cancel()
        if kept.loop is not asyncio.get_running_loop():
            _drop(kept.smtp, kept.smtp.transport)
            return None, 0
        try:
            async with asyncio.timeout(_PROBE):
                await kept.smtp.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            _drop(kept.smtp, kept.smtp.transport)
            return None, 0
        except BaseException:  # the send's deadline, or a stop: it is no longer kept
            _drop(kept.smtp, kept.smtp.transport)
            raise
        return kept.smtp, kept.sent

    async def _keep(self, smtp: aiosmtplib.SMTP, sent: int, until: float) -> None:
        """Keep the connection for the next message, or QUIT it (full, or one is kept)."""
        if self._kept is not None or sent >= _MAX_PER_CONNECTION or not smtp.is_connected:
            await _quit(smtp, until)
            return
        kept = _Kept(smtp, asyncio.get_running_loop(), sent)
        kept.closer = asyncio.create_task(self._close_when_idle(kept))
        self._kept = kept

    async def _close_when_idle(self, kept: _Kept) -> None:
        try:
            await asyncio.sleep(_KEEP_IDLE)
        except asyncio.CancelledError:
            # Cancelled by a send taking the connection (it is no longer kept), or by
            # the event loop shutting down (it still is): then close it here.
            if self._kept is kept:
                self._kept = None
                _drop(kept.smtp, kept.smtp.transport)
            raise
        if self._kept is kept:
            self._kept = None
            await _quit(kept.smtp, asyncio.get_running_loop().time() + _QUIT_GRACE)

    async def _client(self, timeout: float) -> aiosmtplib.SMTP:
        """An unconnected client for the configured server (TLS context, EHLO name ready)."""
        settings = self._settings
        tls = await self._tls_context() if settings.security != "none" else None
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            timeout=timeout,  # per operation; the caller's deadline bounds the whole
            local_hostname=self._local_hostname,
            use_tls=settings.security == "tls",
            start_tls=False,  # done in _open, so "not offered" is an error, never a downgrade
            tls_context=tls,
        )

    async def _open(self, smtp: aiosmtplib.SMTP) -> None:
        """Connect, secure and authenticate as the settings say; raises on any failure."""
        settings = self._settings
        await smtp.connect()
        if settings.security == "starttls":
            await smtp.ehlo()
            if not smtp.supports_extension("starttls"):
                raise self._error(
                    f"{settings.host}:{settings.port} does not offer STARTTLS, which"
                    " security = \"starttls\" requires", ChannelFailure.CLIENT, permanent=True)
            await smtp.starttls(server_hostname=settings.host)
        if settings.username:
            await smtp.ehlo()
            if not smtp.supports_extension("auth"):
                raise self._error(
                    "the server offers no AUTH"
                    + (" on this unencrypted connection" if settings.security == "none" else ""),
                    ChannelFailure.AUTH, permanent=True)
            password = settings.password.get_secret_value() if settings.password else ""
            await smtp.login(settings.username, password)

    async def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            try:
                self._tls = await asyncio.to_thread(self._build_tls_context)
            except (OSError, ssl.SSLError) as exc:
                raise self._error(
                    f"cannot load ca_file {self._settings.ca_file}: {exc}",
                    ChannelFailure.CLIENT, permanent=True) from None
        return self._tls

    def _build_tls_context(self) -> ssl.SSLContext:
        # create_default_context(cafile=...) would trust *only* that file: load both.
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self._settings.ca_file is not None:
            context.load_verify_locations(cafile=str(self._settings.ca_file))
        return context

    # -- errors ------------------------------------------------------------------------

    def _failure(self, exc: BaseException, timeout: float) -> ChannelError:
        """The ``ChannelError`` for anything an SMTP conversation raised."""
        where = f"{self._settings.host}:{self._settings.port}"
        match exc:
            case aiosmtplib.SMTPRecipientsRefused():
                return self._all_refused(exc.recipients)
            case aiosmtplib.SMTPAuthenticationError():
                return self._error(f"authentication refused: {self._reply(exc.code, exc.message)}",
                                   ChannelFailure.AUTH, permanent=exc.code >= 500)
            case aiosmtplib.SMTPSenderRefused():
                return self._replied(f"sender {exc.sender} refused", exc.code, exc.message)
            case aiosmtplib.SMTPConnectResponseError():
                return self._replied(f"{where} refused the session", exc.code, exc.message,
                                     kind_5xx=ChannelFailure.SERVER)
            case aiosmtplib.SMTPResponseException():
                return self._replied("the server refused", exc.code, exc.message)
            case TimeoutError():  # includes aiosmtplib's timeouts and our deadline
                return self._error(f"no complete SMTP exchange with {where} within {timeout:g}s",
                                   ChannelFailure.TIMEOUT)
            case ssl.SSLError():
                return self._tls_failure(exc, where)
            case aiosmtplib.SMTPConnectError() if isinstance(exc.__cause__, ssl.SSLError):
                return self._tls_failure(exc.__cause__, where)
            case aiosmtplib.SMTPConnectError():
                return self._error(f"cannot connect to {where}: {self._clean(exc.message)}",
                                   ChannelFailure.CONNECT)
            case aiosmtplib.SMTPServerDisconnected():
                return self._error(f"{where} closed the connection: {self._clean(exc.message)}",
                                   ChannelFailure.CONNECT)
            case aiosmtplib.SMTPNotSupported():
                return self._error(self._clean(exc.message), ChannelFailure.CLIENT,
                                   permanent=True)
            case aiosmtplib.SMTPException():
                return self._error(self._clean(exc.message), ChannelFailure.SERVER)
            case OSError():
                return self._error(f"connection to {where} failed: {self._clean(str(exc))}",
                                   ChannelFailure.CONNECT)
            case ValueError():  # an address aiosmtplib cannot send
                return self._error(self._clean(str(exc)), ChannelFailure.CLIENT, permanent=True)
        return self._error(f"unexpected {type(exc).__name__}: {self._clean(str(exc))}",
                           ChannelFailure.SERVER)

    def _tls_failure(self, exc: ssl.SSLError, where: str) -> ChannelError:
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return self._error(f"{where} closed the connection during the TLS handshake",
                               ChannelFailure.CONNECT)
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = f"TLS certificate of {where} not trusted: {exc.verify_message}"
        else:
            reason = f"TLS handshake with {where} failed: {exc.reason or exc}"
        hint = " (set ca_file for a private CA)" if self._settings.ca_file is None else ""
        return self._error(self._clean(reason) + hint, ChannelFailure.CLIENT, permanent=True)

    def _all_refused(self, refusals: Sequence[aiosmtplib.SMTPRecipientRefused]) -> ChannelError:
        detail = "; ".join(f"{r.recipient} ({self._reply(r.code, r.message)})" for r in refusals)
        if all(r.code >= 500 for r in refusals):
            return self._error(f"every recipient refused: {detail}", ChannelFailure.CLIENT,
                               permanent=True)
        return self._error(f"every recipient refused, some for now: {detail}",
                           ChannelFailure.SERVER)

    def _replied(self, what: str, code: int, message: str,
                 kind_5xx: ChannelFailure = ChannelFailure.CLIENT) -> ChannelError:
        reason = f"{what}: {self._reply(code, message)}"
        if 400 <= code < 500:
            return self._error(reason, ChannelFailure.SERVER)
        return self._error(reason, kind_5xx if code >= 500 else ChannelFailure.SERVER,
                           permanent=code >= 500)

    def _reply(self, code: int, message: str) -> str:
        return f"{code} {self._clean(message)}"

    def _clean(self, text: str) -> str:
        """Server text on one short line, redacted."""
        text = self._redact(text)
        return text if len(text) <= _MAX_REPLY else text[: _MAX_REPLY - 1] + "…"

    def _redact(self, text: str) -> str:
        """Text on one line without the password (or its base64 forms, as AUTH sends it)."""
        text = render.one_line(text)
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _secrets(self) -> list[str]:
        password = self._settings.password.get_secret_value() if self._settings.password else ""
        if not password:
            return []
        user = self._settings.username or ""
        encoded = [base64.b64encode(raw.encode()).decode()
                   for raw in (password, f"\0{user}\0{password}")]
        return sorted({password, *encoded}, key=len, reverse=True)

    def _error(self, reason: str, kind: ChannelFailure, *, permanent: bool = False) -> ChannelError:
        return ChannelError(self.name, self._redact(reason), kind, permanent=permanent)


async def _quit(smtp: aiosmtplib.SMTP, until: float) -> None:
    """A polite QUIT; the message is already accepted, so no failure matters here."""
    transport = smtp.transport  # the TLS one after STARTTLS; quit() forgets it
    try:
        if smtp.is_connected and until > asyncio.get_running_loop().time():
            async with asyncio.timeout_at(until):
                await smtp.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        _drop(smtp, transport)


def _drop(smtp: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None) -> None:
    """Close the connection now.

    ``smtp.close()`` on a TLS connection starts a close_notify exchange that keeps
    the socket open until the server answers (or 30 s pass); the SMTP session is
    over either way, so abort the transport and release the socket at once.
    """
    smtp.close()
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
