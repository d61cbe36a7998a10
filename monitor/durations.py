"""Durations as people write them in configuration and rules: ``30s``, ``15m``, ``2h``, ``7d``.

Parsing only; no clock here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> ``timedelta(minutes=90)``; raises ``ValueError`` with the accepted forms."""
    cleaned = text.strip().lower().replace(" ", "")
    if not _WHOLE.fullmatch(cleaned):
        raise ValueError(
            f"invalid duration {text!r}: write a number and a unit (s, m, h, d, w),"
            " e.g. 30s, 15m, 2h, 7d"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(cleaned))
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Rate:
    """``20/1h``: at most ``count`` events per ``period``."""

    count: int
    period: timedelta

    def __str__(self) -> str:
        return f"{self.count}/{format_duration(self.period)}"


_RATE = re.compile(r"\s*(\d+)\s*/\s*(\S+)\s*")


def parse_rate(text: str) -> Rate:
    """``"20/1h"`` -> ``Rate(20, 1 hour)``; raises ``ValueError`` saying the form."""
    m = _RATE.fullmatch(text)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"{text!r} is not COUNT/PERIOD, e.g. 20/1h")
    return Rate(int(m.group(1)), parse_duration(m.group(2)))


def describe(value: timedelta) -> str:
    """A duration for people to read in a log line or an alert: 45s, 90m, 6h00m, 3d2h."""
    seconds = int(value.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling: ``timedelta(hours=72)`` -> ``"3d"``."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _coerce(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"a duration needs a unit: write {value}s, {value}m, ..., not {value}")
    return value


def _coerce_optional(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "off":
        return None
    return _coerce(value)


Duration = Annotated[
    timedelta, BeforeValidator(_coerce), PlainSerializer(format_duration, return_type=str)
]
"""A pydantic field type: a ``timedelta`` written as ``15m`` in files and environment."""

def _coerce_rate(value: object) -> object:
    return parse_rate(value) if isinstance(value, str) else value


RateLimit = Annotated[Rate, BeforeValidator(_coerce_rate), PlainSerializer(str, return_type=str)]
"""A pydantic field type for ``COUNT/PERIOD`` limits."""

OptionalDuration = Annotated[
    timedelta | None,
    BeforeValidator(_coerce_optional),
    PlainSerializer(lambda v: "off" if v is None else format_duration(v), return_type=str),
]
"""Like ``Duration``, but ``"off"`` means no limit (``None``)."""
