"""Channel *slack*, message building: alerts and digests as Block Kit plus a fallback text.

Pure functions, no I/O: ``monitor.channels.slack`` sends what this module builds.
Every piece of internet text (headline, source, snippet, terms, rule title,
template output) goes through ``escape`` -- ``&``, ``<`` and ``>`` become
entities -- *before* any markup of ours is put around it, so ``<!channel>``,
``<@U123>`` or ``<https://evil.example|bank.com>`` in a headline is shown, never
obeyed. Links are made only from http(s) URLs, with ``|``, ``<`` and ``>``
percent-encoded. Long text is cut *before* escaping, so an entity or a link is
never cut in half; digests are split into several messages at item boundaries.

This module must not send anything, and must not put unescaped text in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from monitor import render
from monitor.records import Alert, Digest
from monitor.severity import Severity

MAX_BLOCKS = 50  # Slack: blocks per message
MAX_SECTION_CHARS = 3000  # Slack: characters in a section's text
MAX_MESSAGE_CHARS = 12_000  # ours: a digest part stays readable (Slack's text cap is 40,000)
MAX_ITEM_CHARS = 1000  # ours: one digest line, so any item fits a section with its heading
MAX_HEADING_CHARS = 300  # ours: a rule heading in a digest

Block = dict[str, Any]

_SEVERITY_EMOJI = {
    Severity.INFO: ":information_source:",
    Severity.LOW: ":large_blue_circle:",
    Severity.MEDIUM: ":large_yellow_circle:",
    Severity.HIGH: ":red_circle:",
    Severity.CRITICAL: ":rotating_light:",
}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One Slack message: ``text`` is the notification and accessibility fallback."""

    text: str
    blocks: tuple[Block, ...]


def escape(text: str) -> str:
    """Slack's escaping: only ``&``, ``<`` and ``>``; enough to make any text inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(raw: str, limit: int) -> str:
    """``raw`` escaped, at most ``limit`` characters: cut before escaping, then "…"."""
    text = escape(raw)
    if len(text) <= limit:
        return text
    if limit < 1:
        return ""
    used = keep = 0
    for char in raw:  # the longest head whose escaped form leaves room for "…"
        width = len(escape(char))
        if used + width > limit - 1:
            break
        used += width
        keep += 1
    return escape(raw[:keep].rstrip()) + "…"


def safe_url(url: str | None) -> str | None:
    """A URL fit to sit inside ``<…|…>``, or ``None`` when it is not http(s)."""
    if not url:
        return None
    cleaned = render.one_line(url).replace(" ", "%20")
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    for char, code in (("|", "%7C"), ("<", "%3C"), (">", "%3E")):
        cleaned = cleaned.replace(char, code)
    return cleaned.replace("&", "&amp;")


def link(url: str | None, label: str) -> str:
    """``<url|label>`` when ``url`` is safe (``label`` already escaped), else the label."""
    return f"<{url}|{label}>" if url else label


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts if t]}


def _text(raw: str) -> str:
    """The fallback ``text``: escaped, never empty (slack-sdk warns about an empty one)."""
    return fit(raw, MAX_SECTION_CHARS) or "newsmon alert"


def _title(alert: Alert) -> str:
    severity = alert.severity.value.upper()
    rule = fit(render.one_line(alert.rule_title), 200)
    return f"{_SEVERITY_EMOJI[alert.severity]} *[{severity}] {rule}*"


def _headline(alert: Alert, limit: int = 2000) -> str:
    url = safe_url(alert.article_url)
    if url and len(url) > limit // 2:
        url = None  # an absurd URL costs the link, never the alert
    room = limit - (len(url) + 3 if url else 0)
    return link(url, fit(render.headline(alert), room))


def _source(alert: Alert) -> str:
    return fit(render.one_line(alert.source), 200) or "unknown source"


def snippet(alert: Alert, limit: int = MAX_SECTION_CHARS - 3) -> str:
    """The snippet, escaped run by run, matched runs in bold; cut to ``limit``."""
    out: list[str] = []
    used = 0
    for raw, matched in render.segments(alert.snippet, alert.matched_terms):
        markup = 2 if matched else 0
        escaped = escape(raw)
        room = limit - used - markup
        if len(escaped) > room:  # a matched term is never cut: it goes whole or not at all
            out.append(fit(raw, room) if room > 1 and not matched else "…")
            break
        out.append(f"*{escaped}*" if matched else escaped)
        used += len(escaped) + markup
    return "".join(out)


def _why(alert: Alert) -> str:
    rule_id = fit(render.one_line(alert.rule_id), 100)
    return f"{fit(render.why(alert), 1500)} · rule `{rule_id}`"


def _snippet_blocks(alert: Alert) -> list[Block]:
    text = snippet(alert)
    return [section(f"“{text}”")] if text else []


def alert_message(alert: Alert, *, threaded: bool) -> SlackMessage:
    """The default message for an alert; ``threaded``: a follow-up posted as a thread reply."""
    when = render.when(alert.published)
    also = f"Also reported by *{_source(alert)}*: {_headline(alert)}"
    if alert.kind == "follow_up" and threaded:
        blocks = [section(also), context(when, _why(alert)), *_snippet_blocks(alert)]
        return SlackMessage(_text(render.summary_line(alert)), tuple(blocks))
    if alert.kind == "follow_up":
        rule = fit(render.one_line(alert.rule_title), 200)
        story = fit(render.one_line(alert.story_id), 100)
        blocks = [
            section(f"{_title(alert)} — follow-up"),
            section(also),
            context(f"follows the earlier *{rule}* alert on this story (story `{story}`)", when),
            *_snippet_blocks(alert),
            context(_why(alert)),
        ]
        fallback = f"Follow-up to the {render.one_line(alert.rule_title)} alert: "
        return SlackMessage(_text(fallback + render.summary_line(alert)), tuple(blocks))
    blocks = [
        section(_title(alert)),
        section(f"*{_headline(alert)}*"),
        context(_source(alert), when),
        *_snippet_blocks(alert),
        context(_why(alert)),
    ]
    return SlackMessage(_text(render.plain_text(alert)), tuple(blocks))


def template_message(rendered: str) -> SlackMessage | None:
    """A user template's output as the text and the only block; ``None`` when it is empty."""
    raw = render.clean(rendered).strip()
    if not raw:
        return None
    text = fit(raw, MAX_SECTION_CHARS)
    return SlackMessage(text, (section(text),))


def digest_line(alert: Alert, limit: int = MAX_ITEM_CHARS) -> str:
    """One digest item, escaped and linked, at most ``limit`` characters (headline cut first)."""
    prefix = "↳ " if alert.kind == "follow_up" else "• "
    url = safe_url(alert.article_url)
    if url and len(url) > limit // 2:
        url = None
    tail = f" ({fit(render.one_line(alert.source), limit // 5)}, {render.when(alert.published)})"
    room = limit - len(prefix) - len(tail) - (len(url) + 3 if url else 0)
    return prefix + link(url, fit(render.headline(alert), room)) + tail


class _Packer:
    """Lines into sections (≤ ``max_section`` chars) into parts (≤ ``max_sections``, ≤ chars).

    A line is never split; a part that starts inside a rule repeats its heading.
    """

    def __init__(self, max_sections: int, max_section: int, max_chars: int) -> None:
        self.parts: list[list[str]] = []
        self._max_sections = max_sections
        self._max_section = max_section
        self._max_chars = max_chars
        self._sections: list[str] = []
        self._lines: list[str] = []
        self._heading = ""

    def heading(self, line: str) -> None:
        self._close_section()
        self._heading = line
        self._add(line, continuation=False)

    def item(self, line: str) -> None:
        self._add(line, continuation=True)

    def finish(self) -> list[list[str]]:
        self._close_part()
        return self.parts

    def _add(self, line: str, continuation: bool) -> None:
        if self._lines and len("\n".join([*self._lines, line])) > self._max_section:
            self._close_section()
        used = sum(len(s) for s in self._sections) + len("\n".join(self._lines))
        full = not self._lines and len(self._sections) >= self._max_sections
        if full or used + len(line) + 1 > self._max_chars:
            lone = self._lines == [self._heading]  # a heading never ends a part alone
            if lone:
                self._lines = []
            self._close_part()
            if lone:
                self._lines.append(self._heading)
            elif continuation and self._heading:
                self._lines.append(self._heading.removesuffix("*") + " (continued)*")
        self._lines.append(line)

    def _close_section(self) -> None:
        if self._lines:
            self._sections.append("\n".join(self._lines))
            self._lines = []

    def _close_part(self) -> None:
        self._close_section()
        if self._sections:
            self.parts.append(self._sections)
            self._sections = []


def digest_messages(digest: Digest) -> list[SlackMessage]:
    """The digest as messages within Slack's limits; none for an empty digest."""
    if not digest.alerts:
        return []
    packer = _Packer(MAX_BLOCKS - 1, MAX_SECTION_CHARS, MAX_MESSAGE_CHARS)
    for (heading, _lines), (_rule, alerts) in zip(
        render.digest_items(digest), digest.by_rule(), strict=True
    ):
        packer.heading(f"*{fit(heading, MAX_HEADING_CHARS)}*")
        for alert in alerts:
            packer.item(digest_line(alert))
    parts = packer.finish()
    since = f"{render.when(digest.since)} – " if digest.since else "until "
    title = f"newsmon digest: {len(digest.alerts)} alerts, {since}{render.when(digest.until)}"
    messages = []
    for number, sections in enumerate(parts, 1):
        label = f"{title} (part {number} of {len(parts)})" if len(parts) > 1 else title
        header: Block = {"type": "header", "text": {"type": "plain_text", "text": label}}
        blocks = (header, *(section(text) for text in sections))
        messages.append(SlackMessage(escape(label), blocks))
    return messages
