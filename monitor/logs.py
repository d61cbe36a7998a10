"""Logging set-up: one line per event on standard error, secrets redacted.

Two forms: a readable line on a terminal, or one JSON object a line (``[logging]
format = "json"``, and by default when standard error goes to the journal, which
systemd tells us through ``$JOURNAL_STREAM``). Log calls about a source, a rule or
a channel pass ``extra=about(source=..., rule=..., channel=...)``: the JSON form
carries them as fields, so ``jq 'select(.source == "x")'`` finds every line about
``x``; the message names them too, for the readable form.

Every configured secret becomes ``***`` in whatever is written: the message, its
fields and any traceback. Under journald each line starts with its syslog
priority (``<3>`` for an error) so ``journalctl -p err`` works.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["auto", "text", "json"]
FIELDS = ("source", "rule", "channel")
_PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
               logging.CRITICAL: 2}


def about(*, source: str | None = None, rule: str | None = None,
          channel: str | None = None) -> dict[str, str]:
    """The structured fields of a log line (``extra=about(source=name)``)."""
    fields = {"source": source, "rule": rule, "channel": channel}
    return {key: value for key, value in fields.items() if value is not None}


class Redactor:
    """Replaces every configured secret with ``***``; the set can change at reload."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, ``message``, the fields, ``error``."""

    def __init__(self, redact: Redactor, *, priority_prefix: bool = False) -> None:
        super().__init__()
        self._redact = redact
        self._priority_prefix = priority_prefix

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        for key in FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = self._redact(str(value))
        if record.exc_info:
            entry["error"] = self._redact(self.formatException(record.exc_info))
        line = json.dumps(entry, ensure_ascii=False)
        if self._priority_prefix:
            return f"<{_PRIORITIES.get(record.levelno, 6)}>{line}"
        return line


def under_journald(stream: TextIO) -> bool:
    """Whether ``stream`` is the journal's stream socket (``$JOURNAL_STREAM`` is dev:inode)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return expected == f"{status.st_dev}:{status.st_ino}"


_redactor = Redactor()


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (),
                  log_format: LogFormat = "auto", stream: TextIO | None = None) -> None:
    """Log to ``stream`` (standard error) in ``log_format``; call again at reload."""
    stream = sys.stderr if stream is None else stream
    _redactor.update(secrets)
    journal = under_journald(stream)
    formatter: logging.Formatter
    if log_format == "json" or (log_format == "auto" and journal):
        formatter = JsonFormatter(_redactor, priority_prefix=journal)
    else:
        formatter = TextFormatter(_redactor)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The scheduler's own per-job lines ("Running job ...") are noise at INFO.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
