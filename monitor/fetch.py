"""Stage *fetch*: get a source's bytes, politely and within hard limits.

http(s) goes through the one shared ``httpx.AsyncClient``: conditional GET from
the stored ETag / Last-Modified (an unchanged feed costs a 304), connect/read
timeouts plus a total deadline around the whole transfer (httpx's own timeouts
are per operation, so a trickling server would never time out), a cap on the
body *after* decompression (we decompress ourselves in bounded steps because
httpx inflates a gzip bomb whole), and bounded redirects.

Local paths and ``file://`` URLs are read from disk with the same size cap (the
demo and the tests use them).

This stage does not parse and does not touch the store.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import re
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from monitor.config import FetchSettings
from monitor.errors import FetchError, FetchFailure
from monitor.records import FetchResult


@dataclass(frozen=True, slots=True)
class Validators:
    """What the source said last time, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


def build_client(settings: FetchSettings) -> httpx.AsyncClient:
    """The one HTTP client of a process; the caller closes it.

    Redirects are followed by ``Fetcher`` itself, one hop at a time, so each hop's
    target can be checked (scheme, private addresses, loops).

    At most ``concurrency`` idle connections are kept for reuse. httpcore's pool looks
    at every pooled connection (and, for each idle one, at all of them again) each
    time a request starts or ends: with up to ``2 * concurrency`` connections kept,
    that was the largest single cost of fetching a changed feed. An idle connection
    is reused only by the next request to its host within httpx's keep-alive expiry
    (5 s), so few survive a busy cycle either way (benchmarks/README.md, ``## poll``).
    """
    return httpx.AsyncClient(
        timeout=_timeouts(settings),
        follow_redirects=False,
        http2=True,
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
        limits=httpx.Limits(max_connections=settings.concurrency * 2,
                            max_keepalive_connections=settings.concurrency),
    )


FEED_TYPES = ("application/rss+xml, application/atom+xml, application/feed+json, "
              "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
PAGE_TYPES = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


def _timeouts(settings: FetchSettings) -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.connect_timeout.total_seconds(),
        read=settings.read_timeout.total_seconds(),
        write=settings.read_timeout.total_seconds(),
        pool=settings.total_timeout.total_seconds(),
    )


class Fetcher:
    """Fetches under one set of limits; the daemon has one for feeds and one for article
    pages (``[full_text]``), sharing the client but not the per-host limits."""

    def __init__(
        self, client: httpx.AsyncClient, settings: FetchSettings, accept: str = FEED_TYPES
    ) -> None:
        self._client = client
        self._settings = settings
        self._accept = accept
        self._timeout = _timeouts(settings)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def fetch(
        self, source: str, url: str, validators: Validators, *, allow_private: bool = False,
        configured: bool = True,
    ) -> FetchResult:
        """``configured``: ``url`` is the user's (so it may be private); a URL read from a
        feed (an article's page) is checked like a redirect target."""
        if not configured and urlsplit(url).scheme.lower() not in ("http", "https"):
            raise FetchError(source, url, "refused: only http(s) links are fetched",
                             FetchFailure.REFUSED)
        if not configured and not allow_private and await _is_private(url):
            raise FetchError(source, url, "refused an address in a private network;"
                             " set allow_private = true to permit it", FetchFailure.REFUSED)
        if is_local(url):
            return await asyncio.to_thread(self._read_file, source, url)
        try:
            async with asyncio.timeout(self._settings.total_timeout.total_seconds()):
                return await self._follow(source, url, validators, allow_private)
        except TimeoutError:
            raise FetchError(
                source,
                url,
                f"no complete answer within {self._settings.total_timeout.total_seconds():g}s",
                FetchFailure.TIMEOUT,
            ) from None

    async def _follow(
        self, source: str, url: str, validators: Validators, allow_private: bool
    ) -> FetchResult:
        """GET ``url``, following at most ``max_redirects`` redirects, each one checked."""
        seen = {url}
        current = url
        # A source configured with a private address is the user's choice; a public
        # source redirecting into the local network is not. Asked at the first redirect:
        # resolving the host for every poll was a DNS lookup per poll, besides httpx's.
        private_ok: bool | None = allow_private or None
        for _ in range(self._settings.max_redirects + 1):
            host = urlsplit(current).hostname or ""
            limit = self._hosts.setdefault(host, asyncio.Semaphore(self._settings.per_host))
            async with limit:
                result = await self._get(source, current, validators)
            if isinstance(result, FetchResult):
                return result
            target = result
            if target in seen:
                raise FetchError(source, url, f"redirect loop at {target}", FetchFailure.REFUSED)
            if urlsplit(target).scheme not in ("http", "https"):
                raise FetchError(source, url, f"refused a redirect to {target}: only http(s)",
                                 FetchFailure.REFUSED)
            if private_ok is None:
                private_ok = await _is_private(url)
            if not private_ok and await _is_private(target):
                raise FetchError(source, url, f"refused a redirect into a private network"
                                 f" ({target}); set allow_private = true to permit it",
                                 FetchFailure.REFUSED)
            seen.add(target)
            current = target
        raise FetchError(source, url, f"more than {self._settings.max_redirects} redirects",
                         FetchFailure.REFUSED)

    async def _get(self, source: str, url: str, validators: Validators) -> FetchResult | str:
        """One request: a result, or the absolute URL a redirect points to."""
        headers = {"Accept": self._accept}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        try:
            async with self._client.stream("GET", url, headers=headers,
                                           timeout=self._timeout) as response:
                if response.is_redirect and "Location" in response.headers:
                    return str(response.url.join(response.headers["Location"]))
                if response.status_code == 304:
                    if not (validators.etag or validators.last_modified):
                        # Nothing was asked conditionally: "not modified" since when? Taken
                        # at its word, the feed would never be read and look merely quiet.
                        raise FetchError(source, url, "HTTP 304 Not Modified to a request"
                                         " without validators", FetchFailure.HTTP_STATUS)
                    return FetchResult(
                        url=url,
                        body=b"",
                        not_modified=True,
                        etag=response.headers.get("ETag", validators.etag),
                        last_modified=response.headers.get(
                            "Last-Modified", validators.last_modified
                        ),
                    )
                if response.status_code >= 400:
                    raise _status_error(source, url, response)
                body = await self._read_capped(source, url, response)
                return FetchResult(
                    url=str(response.url),
                    body=body,
                    content_type=response.headers.get("Content-Type"),
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                )
        except httpx.TimeoutException as exc:
            raise FetchError(source, url, f"timed out ({type(exc).__name__})",
                             FetchFailure.TIMEOUT) from None
        except httpx.ConnectError as exc:
            raise FetchError(source, url, f"cannot connect: {exc}", FetchFailure.CONNECT) from None
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(source, url, str(exc), FetchFailure.REFUSED) from None
        except httpx.HTTPError as exc:
            raise FetchError(source, url, f"transfer failed: {exc}", FetchFailure.CONNECT) from None

    async def _read_capped(self, source: str, url: str, response: httpx.Response) -> bytes:
        cap = self._settings.max_bytes
        encodings = [
            e.strip().lower()
            for e in response.headers.get("Content-Encoding", "").split(",")
            if e.strip() and e.strip().lower() != "identity"
        ]
        if len(encodings) > 1:
            raise FetchError(source, url, f"refused stacked Content-Encoding {encodings}",
                             FetchFailure.REFUSED)
        chunks = response.aiter_raw()
        if encodings:
            if encodings[0] not in ("gzip", "x-gzip", "deflate"):
                raise FetchError(source, url, f"unsupported Content-Encoding {encodings[0]!r}",
                                 FetchFailure.REFUSED)
            chunks = _inflate(chunks, encodings[0], cap)
        received = bytearray()
        try:
            async for chunk in chunks:
                received += chunk
                if len(received) > cap:
                    raise FetchError(source, url, f"body larger than {cap} bytes",
                                     FetchFailure.TOO_LARGE)
        except zlib.error as exc:
            raise FetchError(source, url, f"corrupt compressed body: {exc}",
                             FetchFailure.REFUSED) from None
        return bytes(received)

    def _read_file(self, source: str, url: str) -> FetchResult:
        path = local_path(url)
        cap = self._settings.max_bytes
        try:
            with path.open("rb") as handle:
                body = handle.read(cap + 1)
        except FileNotFoundError:
            raise FetchError(source, url, "file not found", FetchFailure.NOT_FOUND) from None
        except OSError as exc:
            raise FetchError(source, url, f"cannot read: {exc.strerror}",
                             FetchFailure.NOT_FOUND) from None
        if len(body) > cap:
            raise FetchError(source, url, f"file larger than {cap} bytes", FetchFailure.TOO_LARGE)
        return FetchResult(url=url, body=body)


async def _inflate(chunks: AsyncIterator[bytes], encoding: str, cap: int) -> AsyncIterator[bytes]:
    """Decompress in bounded steps: never more than ``cap + 1`` bytes out of one call."""
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    produced = 0
    async for chunk in chunks:
        data = chunk
        while data:
            out = inflater.decompress(data, cap + 1 - produced)
            produced += len(out)
            yield out
            if produced > cap:
                return
            data = inflater.unconsumed_tail
    tail = inflater.flush()
    if tail:
        yield tail


def _status_error(source: str, url: str, response: httpx.Response) -> FetchError:
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return FetchError(
        source,
        url,
        f"HTTP {response.status_code} {response.reason_phrase}".rstrip(),
        FetchFailure.HTTP_STATUS,
        retry_after=retry_after,
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date
    (``now`` is a Unix time; a date without a zone is UTC); ``None`` if unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def _is_private(url: str) -> bool:
    """Whether the URL's host is (or resolves to) a loopback, private or link-local address."""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return False  # unresolvable: the request itself will fail and say so
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    return any(
        a.is_private or a.is_loopback or a.is_link_local or a.is_reserved or a.is_multicast
        for a in addresses
    )


def is_local(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return scheme == "file" or scheme == "" or (len(scheme) == 1 and url[1:3] in (":\\", ":/"))


def local_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        return Path(unquote(parts.path))
    return Path(url)
