"""What an alert says, independent of any channel's markup.

Channels build their messages from these pieces and escape every piece of
internet text for their own format *before* adding their own markup, so a
headline can never become markup. ``segments`` splits a snippet into matched
and unmatched runs for exactly that reason: escape each run, then mark the
matched ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from monitor.records import Alert, Digest

# Control characters, line/paragraph separators and lone surrogates (unencodable).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def clean(text: str) -> str:
    """Text without control characters (newlines kept); never markup-safe by itself."""
    return _CONTROL.sub(" ", text)


def one_line(text: str) -> str:
    """Text on one line: every run of whitespace and control characters is one space."""
    return " ".join(clean(text).split())


def when(published: datetime | None) -> str:
    return published.strftime("%Y-%m-%d %H:%M UTC") if published else "undated"


def matched_terms(alert: Alert, limit: int = 12) -> list[str]:
    """Distinct matched terms in the order they were found, at most ``limit``."""
    seen: dict[str, None] = {}
    for term in alert.matched_terms:
        key = one_line(term)
        if key and key.casefold() not in {k.casefold() for k in seen}:
            seen[key] = None
    return list(seen)[:limit]


def why(alert: Alert) -> str:
    """One line saying why the rule fired."""
    terms = matched_terms(alert)
    return "matched: " + ", ".join(terms) if terms else "matched"


def segments(snippet: str, terms: Iterable[str]) -> list[tuple[str, bool]]:
    """``snippet`` as (text, is_match) runs, matched terms found case-insensitively."""
    words = sorted({one_line(t) for t in terms if one_line(t)}, key=len, reverse=True)
    text = one_line(snippet)
    if not words:
        return [(text, False)] if text else []
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out: list[tuple[str, bool]] = []
    position = 0
    for match in pattern.finditer(text):
        if match.start() > position:
            out.append((text[position : match.start()], False))
        out.append((match.group(), True))
        position = match.end()
    if position < len(text):
        out.append((text[position:], False))
    return out


def headline(alert: Alert) -> str:
    return one_line(alert.article_title) or "(no headline)"


def summary_line(alert: Alert) -> str:
    """``[HIGH] Rule title`` or, for a follow-up, the story it joins."""
    if alert.kind == "follow_up":
        return f"Also reported by {one_line(alert.source)}: {headline(alert)}"
    return f"[{alert.severity.value.upper()}] {one_line(alert.rule_title)}"


def plain_text(alert: Alert) -> str:
    """The whole alert as plain text (console, email text part, fallbacks)."""
    lines = [summary_line(alert)]
    if alert.kind == "alert":
        lines.append(headline(alert))
    else:
        lines.append(f"(follow-up to the {one_line(alert.rule_title)} alert)")
    source_line = f"{one_line(alert.source)} · {when(alert.published)}"
    lines.append(source_line)
    if alert.article_url:
        lines.append(one_line(alert.article_url))
    lines.append(why(alert) + f" (rule {alert.rule_id})")
    snippet = one_line(alert.snippet)
    if snippet:
        lines.append(f"“{snippet}”")
    return "\n".join(lines)


def digest_items(digest: Digest) -> list[tuple[str, list[str]]]:
    """(rule heading, one plain line per alert) for each rule in the digest."""
    out: list[tuple[str, list[str]]] = []
    for _rule_id, alerts in digest.by_rule():
        first = alerts[0]
        heading = f"{one_line(first.rule_title)} [{first.severity.value}] — {len(alerts)}"
        lines = []
        for alert in alerts:
            prefix = "↳ " if alert.kind == "follow_up" else ""
            link = f" <{one_line(alert.article_url)}>" if alert.article_url else ""
            lines.append(f"{prefix}{headline(alert)} ({one_line(alert.source)},"
                         f" {when(alert.published)}){link}")
        out.append((heading, lines))
    return out


def digest_text(digest: Digest) -> str:
    parts = [f"newsmon digest: {len(digest.alerts)} alerts"]
    for heading, lines in digest_items(digest):
        parts.append("")
        parts.append(heading)
        parts.extend(f"  - {line}" for line in lines)
    return "\n".join(parts)
