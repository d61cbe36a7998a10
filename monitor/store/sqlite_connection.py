"""Stage *store*: how every SQLite connection is set up (``Store.open`` registers it).

WAL lets readers (status, backtest, other tools) work while the daemon writes. A new
file is switched to WAL by whichever connection comes first, and the switch needs the
file to itself: SQLite answers "database is locked" at once, without waiting out the
busy timeout, when another connection is using the file at that moment (several
newsmon processes opening a new state file together). So the switch waits here, as the
busy timeout would have. Nothing else here may touch the database.
"""

from __future__ import annotations

import sqlite3
import time

BUSY_TIMEOUT_SECONDS = 10.0
_FIRST_PAUSE_SECONDS = 0.001
_LONGEST_PAUSE_SECONDS = 0.05


def set_up_connection(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    pause = _FIRST_PAUSE_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE_SECONDS)
