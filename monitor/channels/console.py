"""Channel *console*: alerts as readable text on standard output (the demo, and debugging).

Control characters from the internet are removed so a headline cannot move the
cursor or recolour the terminal; colour is used only on a terminal (or when
asked) and the matched terms are highlighted.
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import TextIO

from monitor.config import ConsoleChannelSettings
from monitor.records import Alert
from monitor.severity import Severity

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SEVERITY_COLOUR = {
    Severity.INFO: "37",
    Severity.LOW: "36",
    Severity.MEDIUM: "33",
    Severity.HIGH: "31",
    Severity.CRITICAL: "1;41",
}


class ConsoleChannel:
    def __init__(self, name: str, settings: ConsoleChannelSettings,
                 stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream or sys.stdout
        isatty = getattr(self._stream, "isatty", lambda: False)()
        self._colour = settings.color == "always" or (settings.color == "auto" and isatty)
        self._lock = asyncio.Lock()

    async def send(self, alert: Alert) -> None:
        async with self._lock:
            self._stream.write(self.render(alert))
            self._stream.flush()

    async def close(self) -> None:
        self._stream.flush()

    def render(self, alert: Alert) -> str:
        severity = alert.severity.value.upper()
        if self._colour:
            severity = f"\x1b[{_SEVERITY_COLOUR[alert.severity]}m{severity}\x1b[0m"
        when = alert.published.strftime("%Y-%m-%d %H:%M UTC") if alert.published else "undated"
        snippet = _clean(alert.snippet)
        for term in sorted(set(alert.matched_terms), key=len, reverse=True):
            clean = _clean(term)
            if clean and self._colour:
                snippet = snippet.replace(clean, f"\x1b[1m{clean}\x1b[0m")
        lines = [
            f"[{severity}] {_clean(alert.rule_title)}  ({alert.rule_id})",
            f"  {_clean(alert.article_title)}",
            f"  {_clean(alert.source)} · {when}" + (
                f" · {_clean(alert.article_url)}" if alert.article_url else ""),
            "  matched: " + ", ".join(_clean(t) for t in dict.fromkeys(alert.matched_terms)),
        ]
        if snippet:
            lines.append(f"  “{snippet}”")
        return "\n".join(lines) + "\n\n"


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)
