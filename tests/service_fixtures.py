"""Building blocks for the service tests: feeds written by the test, rule files, and a
systemd notification socket the test listens on."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape


def rss(*titles: str) -> bytes:
    """An RSS feed with one item per title (its guid is the title, so items stay known;
    its link too: one link is one article, whichever feed carries it)."""
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>{escape(title)}</title>"
        f"<link>https://news.example.org/{quote(title)}</link>"
        f"<guid>{escape(title)}</guid><description>{escape(title)}.</description>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=index))}</pubDate></item>"
        for index, title in enumerate(titles)
    )
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Test wire</title>'
            f"<link>https://news.example.org/</link>{items}</channel></rss>").encode()


def rule(rule_id: str, query: str) -> str:
    """A rule file: one alert per matching article."""
    return (f"id: {rule_id}\ntitle: Rule {rule_id}\nseverity: high\nquery: {query}\n"
            "dedupe: {scope: article, window: 72h}\n")


BROKEN_RULE = "id: broken\ntitle: A rule with a query that does not parse\nquery: (Scholz AND\n"


def write(path: Path, text: str) -> None:
    """Replace ``path`` as an editor would: write a new file, rename it over the old one."""
    fresh = path.with_name(f".{path.name}.new")
    fresh.write_text(text)
    fresh.replace(path)


class NotifySocket:
    """The ``$NOTIFY_SOCKET`` a service manager would listen on: a datagram socket."""

    def __init__(self, path: Path) -> None:
        self.address = str(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.address)
        self.messages: list[str] = []

    def wait_for(self, line: str, after: int = 0, timeout: float = 10) -> int:
        """The index of the first message after index ``after`` that holds ``line``."""
        deadline = time.monotonic() + timeout
        index = after
        while True:
            while index < len(self.messages):
                if line in self.messages[index].splitlines():
                    return index
                index += 1
            if time.monotonic() >= deadline:
                raise AssertionError(f"{line!r} not received within {timeout}s: {self.messages}")
            self._socket.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.messages.append(self._socket.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self._socket.close()
