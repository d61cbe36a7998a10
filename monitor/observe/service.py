"""``/healthz`` and ``/metrics`` of one running daemon: what they report, and the
endpoint that serves them for as long as ``Daemon.run`` runs.

The daemon gives what only it knows (whether its scheduler runs, when it last
polled) as ``HealthFacts`` without the store's answer; this module asks the store,
with a deadline, and reads the outbox depth at each scrape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from monitor.config import HttpSettings
from monitor.observe.endpoint import Endpoint, Response
from monitor.observe.healthz import Health, HealthFacts, assess
from monitor.observe.metrics import CONTENT_TYPE, Metrics
from monitor.store import Store

log = logging.getLogger("newsmon.observe")

STORE_DEADLINE = 5.0  # seconds a health check or a scrape waits for the store
DbRunner = Callable[..., Awaitable[Any]]


class Observer:
    """Health and metrics of one daemon, served while it runs."""

    def __init__(self, store: Store, db: DbRunner, metrics: Metrics,
                 facts: Callable[[], HealthFacts]) -> None:
        self._store = store
        self._db = db
        self._metrics = metrics
        self._facts = facts
        self._endpoint: Endpoint | None = None

    async def start(self, http: HttpSettings) -> None:
        if http.enabled:
            endpoint = Endpoint(http.host, http.port,
                                {"/healthz": self._healthz, "/metrics": self._scrape})
            await endpoint.start()
            self._endpoint = endpoint  # only now has it a port to report

    async def stop(self) -> None:
        if self._endpoint is not None:
            await self._endpoint.stop()
            self._endpoint = None

    @property
    def port(self) -> int | None:
        return self._endpoint.port if self._endpoint is not None else None

    async def health(self) -> Health:
        store_error: str | None = None
        try:
            await asyncio.wait_for(self._db(self._store.ping), STORE_DEADLINE)
        except TimeoutError:
            store_error = f"no answer within {STORE_DEADLINE:.0f}s"
        except Exception as exc:
            store_error = error_line(exc)
        return assess(replace(self._facts(), store_error=store_error))

    async def _healthz(self) -> Response:
        health = await self.health()
        return Response.json(health.status_code, health.body)

    async def _scrape(self) -> Response:
        try:
            counts = await asyncio.wait_for(self._db(self._store.outbox_counts.unsent_counts),
                                            STORE_DEADLINE)
        except Exception as exc:
            log.warning("metrics: the outbox could not be read: %s", error_line(exc))
            counts = None
        self._metrics.set_outbox(counts)
        return Response(200, self._metrics.render(), CONTENT_TYPE)


def error_line(exc: BaseException) -> str:
    """A store error as one short line (the driver's own message, not SQLAlchemy's story)."""
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
