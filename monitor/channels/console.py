"""Channel *console*: alerts as readable text on standard output (the demo, and debugging).

Control characters from the internet are removed (``render.one_line``) so a
headline cannot move the cursor or recolour the terminal; colour is used only on
a terminal (or when asked), and then the matched terms are bold.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from monitor import render
from monitor.channel_settings import ConsoleChannelSettings
from monitor.records import Alert, Digest
from monitor.severity import Severity
from monitor.templates import render_template

_SEVERITY_COLOUR = {
    Severity.INFO: "37",
    Severity.LOW: "36",
    Severity.MEDIUM: "33",
    Severity.HIGH: "31",
    Severity.CRITICAL: "1;41",
}


class ConsoleChannel:
    pace = 0.0

    def __init__(self, name: str, settings: ConsoleChannelSettings,
                 stream: TextIO | None = None) -> None:
        self.name = name
        self._settings = settings
        self._stream = stream or sys.stdout
        isatty = getattr(self._stream, "isatty", lambda: False)()
        self._colour = settings.color == "always" or (settings.color == "auto" and isatty)
        self._lock = asyncio.Lock()

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        await self._write(self.render(alert))
        return None

    async def send_digest(self, digest: Digest) -> None:
        await self._write(render.clean(render.digest_text(digest)) + "\n\n")

    async def close(self) -> None:
        self._stream.flush()

    async def _write(self, text: str) -> None:
        async with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def render(self, alert: Alert) -> str:
        if self._settings.templates.text:
            return render.clean(render_template(self._settings.templates.text, alert)) + "\n"
        first = render.summary_line(alert)
        if alert.kind == "alert" and self._colour:
            colour = _SEVERITY_COLOUR[alert.severity]
            first = first.replace("[", f"[\x1b[{colour}m", 1).replace("]", "\x1b[0m]", 1)
        lines = [f"{first}  ({alert.rule_id})"]
        if alert.kind == "alert":
            lines.append(f"  {render.headline(alert)}")
        else:
            lines.append(f"  follows the {render.one_line(alert.rule_title)} alert on this story")
        where = f"  {render.one_line(alert.source)} · {render.when(alert.published)}"
        if alert.article_url:
            where += f" · {render.one_line(alert.article_url)}"
        lines.append(where)
        lines.append(f"  {render.why(alert)}")
        snippet = "".join(
            f"\x1b[1m{text}\x1b[0m" if matched and self._colour else text
            for text, matched in render.segments(alert.snippet, alert.matched_terms)
        )
        if snippet:
            lines.append(f"  “{snippet}”")
        return "\n".join(lines) + "\n\n"
