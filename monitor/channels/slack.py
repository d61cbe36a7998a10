"""Channel *slack*, delivery stage: alerts and digests to Slack, or a ``ChannelError``.

Two set-ups: the Web API with a bot token (``chat.postMessage`` to ``channel``;
returns the message ``ts`` so follow-ups reply in its thread) or an incoming
webhook. With both configured, the Web API wins. The *sync* slack-sdk clients
run in a daemon thread (the async ones need aiohttp), with the socket timeout
``timeout`` *and* a total deadline of the same length around every call; an
abandoned thread ends at its socket timeout, or with the process (a server that
trickles bytes never lets it end, and must not hold up a stop: see ``blocking``).
slack-sdk's retry handlers are off: the outbox retries, honouring ``retry_after``.

Failures map onto ``ChannelFailure`` (see ``_api_failure``, ``_webhook_failure``
and ``_transport_failure``): 429 and ``ratelimited`` -> rate-limited with
Retry-After (seconds or an HTTP date, capped at ``MAX_RETRY_AFTER``); bad
credentials -> auth, permanent; unknown or archived channel, dead webhook ->
client, permanent; 5xx and non-JSON replies -> server; refused -> connect;
slow -> timeout.

This module must not decide whether to send, must not retry, and must never put
the token or the webhook URL (its path is the secret) in an error or a log line.
Message building lives in ``slack_blocks``.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import logging
import re
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from socket import gaierror
from typing import Any, Protocol, cast
from urllib.error import URLError

from jinja2 import TemplateError
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web import SlackResponse, WebClient
from slack_sdk.webhook import WebhookClient

from monitor.blocking import in_daemon_thread
from monitor.channel_settings import SlackChannelSettings
from monitor.channels.slack_blocks import (
    SlackMessage,
    alert_message,
    digest_messages,
    template_message,
)
from monitor.errors import ChannelError, ChannelFailure
from monitor.fetch import parse_retry_after
from monitor.logs import about
from monitor.records import Alert, Digest
from monitor.secrets import secret_forms
from monitor.templates import render_template

MAX_RETRY_AFTER = 300.0  # seconds: a Retry-After of a day must not park the channel for a day

AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked",
                         "token_expired", "no_permission", "missing_scope"})
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived",
                            "channel_is_archived"})
SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable",
                           "request_timeout"})
_NON_JSON = "Received a response in a non-JSON format"  # slack-sdk's wording
_CODE = re.compile(r"[a-z0-9_.]{1,64}")  # a Slack error code; anything else is not repeated

log = logging.getLogger(__name__)
# slack-sdk logs request URLs (the webhook secret) at DEBUG and our own failures at
# ERROR; we report failures ourselves, so its logger stays quiet.
_SDK_LOG = logging.getLogger(f"{__name__}.sdk")
_SDK_LOG.setLevel(logging.CRITICAL)
_SDK_LOG.propagate = False


class _Failure(Exception):
    """Raised in the worker thread; becomes a ``ChannelError`` with the channel's name."""

    def __init__(self, reason: str, kind: ChannelFailure, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.permanent = permanent
        self.retry_after = retry_after


class _Transport(Protocol):
    threads: bool  # can reply in a thread

    def post(self, message: SlackMessage, thread: str | None) -> str | None: ...


class _WebApi:
    threads = True

    def __init__(self, token: str, channel: str, api_url: str, timeout: float) -> None:
        self._channel = channel
        # urllib takes a float timeout; slack-sdk annotates it as int.
        self._client = WebClient(token=token, base_url=api_url, timeout=cast(int, timeout),
                                 logger=_SDK_LOG, retry_handlers=[])
        self._timeout = timeout

    def post(self, message: SlackMessage, thread: str | None) -> str | None:
        try:
            response = self._client.chat_postMessage(
                channel=self._channel, text=message.text, blocks=list(message.blocks),
                thread_ts=thread, unfurl_links=False, unfurl_media=False,
            )
        except SlackApiError as exc:
            raise _api_failure(cast(SlackResponse, exc.response)) from None
        except json.JSONDecodeError:
            raise _Failure("non-JSON reply from the Slack API", ChannelFailure.SERVER) from None
        except Exception as exc:
            raise _transport_failure(exc, "the Slack API", self._timeout) from None
        ts = response.get("ts")
        return ts if isinstance(ts, str) and ts else None


class _Webhook:
    threads = False

    def __init__(self, url: str, timeout: float) -> None:
        self._client = WebhookClient(url, timeout=cast(int, timeout), logger=_SDK_LOG,
                                     retry_handlers=[])
        self._timeout = timeout

    def post(self, message: SlackMessage, thread: str | None) -> str | None:
        body = {"text": message.text, "blocks": list(message.blocks),
                "unfurl_links": False, "unfurl_media": False}
        try:
            response = self._client.send_dict(body)
        except Exception as exc:
            raise _transport_failure(exc, "the webhook", self._timeout) from None
        # A webhook's errors (429 included) come back as ordinary responses.
        if not 200 <= response.status_code < 300:
            raise _webhook_failure(response.status_code, response.body, response.headers)
        return None


class SlackChannel:
    """Slack through the Web API (token + channel) or an incoming webhook."""

    pace = 1.0  # Slack accepts about one message per second per channel

    def __init__(self, name: str, settings: SlackChannelSettings) -> None:
        self.name = name
        self._settings = settings
        self._deadline = settings.timeout.total_seconds()
        token = settings.token.get_secret_value().strip() if settings.token else ""
        webhook = settings.webhook_url.get_secret_value().strip() if settings.webhook_url else ""
        forms = {form for secret in (token, webhook) if secret for form in secret_forms(secret)}
        self._secrets = sorted(forms, key=len, reverse=True)  # longest first: a URL before its path
        self._transport: _Transport | None = None
        if token and settings.channel:
            self._transport = _WebApi(token, settings.channel, settings.api_url, self._deadline)
        elif webhook:
            self._transport = _Webhook(webhook, self._deadline)
        # digest fingerprint -> parts already delivered, so a retried digest resumes
        self._digest_progress: OrderedDict[str, int] = OrderedDict()

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        transport = self._require_transport()
        threadable = alert.kind == "follow_up" and transport.threads
        reply_to = thread if thread and threadable else None
        return await self._post(transport, self.render(alert, threaded=reply_to is not None),
                                reply_to)

    async def send_digest(self, digest: Digest) -> None:
        messages = digest_messages(digest)
        if not messages:
            return
        transport = self._require_transport()
        key = hashlib.sha256(repr([(m.text, m.blocks) for m in messages]).encode()).hexdigest()
        done = self._digest_progress.get(key, 0)
        for index in range(done, len(messages)):
            if index > done and self.pace:
                await asyncio.sleep(self.pace)
            await self._post(transport, messages[index], None)
            self._digest_progress[key] = index + 1
            self._digest_progress.move_to_end(key)
            while len(self._digest_progress) > 16:
                self._digest_progress.popitem(last=False)
        self._digest_progress.pop(key, None)

    async def close(self) -> None:
        """Nothing to release: slack-sdk's urllib clients keep no connection open."""

    def render(self, alert: Alert, *, threaded: bool = False) -> SlackMessage:
        """The message for ``alert``: the channel's text template if it has one, else ours."""
        source = self._settings.templates.text
        if source:
            try:
                message = template_message(render_template(source, alert))
            except TemplateError as exc:
                log.warning("channel %s: the text template failed (%s); sent the default"
                            " message instead", self.name, type(exc).__name__,
                            extra=about(channel=self.name, rule=alert.rule_id))
            else:
                if message is not None:
                    return message
        return alert_message(alert, threaded=threaded)

    def _require_transport(self) -> _Transport:
        if self._transport is None:
            raise ChannelError(self.name, "neither webhook_url nor token and channel are set",
                               ChannelFailure.CLIENT, permanent=True)
        return self._transport

    async def _post(self, transport: _Transport, message: SlackMessage,
                    thread: str | None) -> str | None:
        try:
            async with asyncio.timeout(self._deadline):
                return await in_daemon_thread(transport.post, message, thread)
        except _Failure as failure:
            raise ChannelError(self.name, self._redact(failure.reason), failure.kind,
                               permanent=failure.permanent,
                               retry_after=failure.retry_after) from None
        except TimeoutError:
            raise ChannelError(self.name, f"no reply from Slack within {self._deadline:g} s",
                               ChannelFailure.TIMEOUT) from None

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from ``now``: delta-seconds or an HTTP date, capped."""
    seconds = parse_retry_after(value, now.timestamp() if now is not None else None)
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def _code(value: object) -> str | None:
    """A Slack error code worth repeating (short, plain), or ``None``."""
    text = value.strip() if isinstance(value, str) else ""
    return text if _CODE.fullmatch(text) else None


def _api_failure(response: SlackResponse) -> _Failure:
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    raw_error = data.get("error")
    error = _code(raw_error)
    said = f"Slack said {error}" if error else f"HTTP {status} from the Slack API"
    if status == 429 or error == "ratelimited":
        retry_after = retry_after_seconds(_header(response.headers, "Retry-After"))
        return _Failure(said, ChannelFailure.RATE_LIMITED, retry_after=retry_after)
    if error in AUTH_ERRORS:
        return _Failure(said, ChannelFailure.AUTH, permanent=True)
    if error in CHANNEL_ERRORS:
        return _Failure(said, ChannelFailure.CLIENT, permanent=True)
    if status >= 500 or error in SERVER_ERRORS:
        return _Failure(said, ChannelFailure.SERVER)
    if isinstance(raw_error, str) and raw_error.startswith(_NON_JSON):
        return _Failure(f"non-JSON reply (HTTP {status}) from the Slack API",
                        ChannelFailure.SERVER)
    return _Failure(said, ChannelFailure.CLIENT)


def _webhook_failure(status: int, body: str, headers: Mapping[str, Any] | None) -> _Failure:
    code = _code(body)
    reason = f"HTTP {status} from the webhook" + (f" ({code})" if code else "")
    if status == 429:
        retry_after = retry_after_seconds(_header(headers, "Retry-After"))
        return _Failure(reason, ChannelFailure.RATE_LIMITED, retry_after=retry_after)
    if status == 403 or code in AUTH_ERRORS or code == "invalid_token":
        return _Failure(reason, ChannelFailure.AUTH, permanent=True)
    if status in (404, 410):
        return _Failure(reason, ChannelFailure.CLIENT, permanent=True)
    if 400 <= status < 500:
        return _Failure(reason, ChannelFailure.CLIENT)
    return _Failure(reason, ChannelFailure.SERVER)


def _transport_failure(exc: Exception, where: str, timeout: float) -> _Failure:
    """A failure below HTTP (or a reply HTTP cannot read); never repeats the exception's text."""
    reason: object = exc.reason if isinstance(exc, URLError) else exc
    if isinstance(reason, TimeoutError):
        return _Failure(f"no reply from {where} within {timeout:g} s", ChannelFailure.TIMEOUT)
    if isinstance(reason, ssl.SSLError | ssl.CertificateError):
        return _Failure(f"TLS with {where} failed", ChannelFailure.CONNECT)
    if isinstance(reason, ConnectionRefusedError):
        return _Failure(f"{where} refused the connection", ChannelFailure.CONNECT)
    if isinstance(reason, gaierror):
        return _Failure(f"cannot resolve the host of {where}", ChannelFailure.CONNECT)
    if isinstance(reason, ConnectionError):
        return _Failure(f"{where} closed the connection", ChannelFailure.CONNECT)
    if isinstance(reason, http.client.HTTPException):
        return _Failure(f"unreadable HTTP reply from {where}", ChannelFailure.SERVER)
    if isinstance(reason, json.JSONDecodeError):
        return _Failure(f"non-JSON reply from {where}", ChannelFailure.SERVER)
    if isinstance(reason, OSError | str):
        return _Failure(f"cannot connect to {where}", ChannelFailure.CONNECT)
    if isinstance(exc, SlackRequestError | ValueError):
        return _Failure(f"the URL of {where} is not a usable http(s) URL", ChannelFailure.CLIENT,
                        permanent=True)
    return _Failure(f"unexpected {type(exc).__name__} talking to {where}", ChannelFailure.SERVER)
