"""Channel *webhook*: one JSON POST per alert (and per digest) to a URL you run.

The body carries the rule, the article and why it matched; with a ``secret``
it is signed: ``X-Newsmon-Signature: sha256=<hex HMAC-SHA256 of the body>``,
with ``X-Newsmon-Timestamp`` inside the signed material so a captured request
cannot be replayed later as new. ``Idempotency-Key`` is the alert's stable key,
so a receiver can drop the resend of a delivery that was cut mid-send.

Uses its own small httpx client (never the feed client: different limits,
no redirects into the unknown). Never logs or reports the URL: it often
embeds a token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from monitor import render
from monitor.channel_settings import WebhookChannelSettings
from monitor.errors import ChannelError, ChannelFailure
from monitor.fetch import parse_retry_after
from monitor.records import Alert, Digest

MAX_RETRY_AFTER = 300.0


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "type": alert.kind,
        "key": alert.key,
        "rule": {"id": alert.rule_id, "title": alert.rule_title,
                 "severity": alert.severity.value},
        "article": {
            "title": alert.article_title,
            "url": alert.article_url,
            "source": alert.source,
            "published": alert.published.isoformat() if alert.published else None,
        },
        "why": {"terms": render.matched_terms(alert), "snippet": alert.snippet,
                "spans": [s.to_json() for s in alert.spans]},
        "story_id": alert.story_id,
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookChannel:
    pace = 0.0

    def __init__(self, name: str, settings: WebhookChannelSettings) -> None:
        self.name = name
        self._settings = settings
        self._client: httpx.AsyncClient | None = None

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        payload = alert_payload(alert)
        if thread:
            payload["follows"] = thread
        await self._post(payload, alert.key)
        return alert.key

    async def send_digest(self, digest: Digest) -> None:
        if not digest.alerts:
            return
        payload = {
            "type": "digest",
            "channel": digest.channel,
            "since": digest.since.isoformat() if digest.since else None,
            "until": digest.until.isoformat(),
            "alerts": [alert_payload(a) for a in digest.alerts],
        }
        key = hashlib.sha256(f"{digest.channel}\0{digest.until.isoformat()}".encode()).hexdigest()
        await self._post(payload, key[:32])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(self, payload: dict[str, Any], key: str) -> None:
        assert self._settings.url is not None
        body = json.dumps(payload, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": key,
                   "X-Newsmon-Timestamp": timestamp, "User-Agent": "newsmon-webhook"}
        if self._settings.secret and self._settings.secret.get_secret_value():
            headers["X-Newsmon-Signature"] = sign(self._settings.secret.get_secret_value(),
                                                  timestamp, body)
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False,
                                             timeout=self._settings.timeout.total_seconds())
        try:
            async with asyncio.timeout(self._settings.timeout.total_seconds()):
                response = await self._client.post(self._settings.url.get_secret_value(),
                                                   content=body, headers=headers)
        except TimeoutError:
            raise self._error("no answer in time", ChannelFailure.TIMEOUT) from None
        except httpx.TimeoutException:
            raise self._error("timed out", ChannelFailure.TIMEOUT) from None
        except httpx.HTTPError as exc:
            raise self._error(f"cannot connect ({type(exc).__name__})",
                              ChannelFailure.CONNECT) from None
        self._check(response)

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 300:
            return
        reason = f"HTTP {status} from the webhook"
        if status == 429:
            after = parse_retry_after(response.headers.get("Retry-After"))
            raise self._error(reason, ChannelFailure.RATE_LIMITED,
                              retry_after=min(after, MAX_RETRY_AFTER) if after else None)
        if status in (401, 403):
            raise self._error(reason, ChannelFailure.AUTH, permanent=True)
        if status in (404, 410) or 300 <= status < 400:
            raise self._error(reason, ChannelFailure.CLIENT, permanent=True)
        kind = ChannelFailure.SERVER if status >= 500 else ChannelFailure.CLIENT
        raise self._error(reason, kind)

    def _error(self, reason: str, kind: ChannelFailure, *, permanent: bool = False,
               retry_after: float | None = None) -> ChannelError:
        return ChannelError(self.name, reason, kind, permanent=permanent,
                            retry_after=retry_after)
