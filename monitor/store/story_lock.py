"""Stage *store*: the lock that makes story assignment one sequence across nodes.

A node holds it from reading what the other nodes stored until its own new
articles are committed, so two nodes never cluster at the same time without
seeing each other's articles. It is a PostgreSQL session advisory lock on a
connection of its own: if the node dies, the connection closes and the server
releases the lock. Its key is derived from the schema, so deployments sharing a
database in different schemas do not wait for each other. On SQLite (one node)
there is nothing to lock.

Blocking calls: the caller runs them off the event loop, on one thread.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from monitor.store.store import Store

_KEY = "hashtext(current_schema() || ':newsmon:stories')"


class StoryLock:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._conn: Connection | None = None
        self._guard = threading.Lock()

    @property
    def needed(self) -> bool:
        return not self._store.single_node

    def acquire(self) -> None:
        """Wait until no other node assigns stories (a no-op on one node)."""
        if not self.needed:
            return
        with self._guard:
            if self._conn is None:
                self._conn = self._store.engine.connect()
            try:
                self._conn.execute(text(f"SELECT pg_advisory_lock({_KEY})"))
                self._conn.commit()
            except DBAPIError:
                self._drop()
                raise

    def release(self) -> None:
        if not self.needed:
            return
        with self._guard:
            if self._conn is None:
                return
            try:
                self._conn.execute(text(f"SELECT pg_advisory_unlock({_KEY})"))
                self._conn.commit()
            except DBAPIError:  # the connection is gone, and the lock with it
                self._drop()

    def close(self) -> None:
        with self._guard:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(DBAPIError):
                self._conn.close()
            self._conn = None
