"""A rule, compiled: queries parsed, options typed. Immutable once loaded."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from monitor.durations import Rate
from monitor.match.query import Node
from monitor.severity import Severity


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something was written: for errors that come after loading."""

    path: Path
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Example:
    """A test article for a rule: a string is its title and its content."""

    fields: tuple[tuple[str, str], ...]
    origin: Origin

    @property
    def label(self) -> str:
        values = dict(self.fields)
        return values.get("title") or next(iter(values.values()), "")


@dataclass(frozen=True, slots=True)
class Dedupe:
    scope: Literal["story", "article"] = "story"
    window: timedelta = timedelta(hours=72)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    origin: Origin
    severity: Severity = Severity.MEDIUM
    description: str = ""
    query: Node | None = None
    all: tuple[Node, ...] = ()
    any: tuple[Node, ...] = ()
    none: tuple[Node, ...] = ()
    fields: tuple[str, ...] = ("title", "summary", "content")
    sources: tuple[str, ...] = ("*",)
    exclude_sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    notify_origin: Origin | None = None
    dedupe: Dedupe = field(default_factory=Dedupe)
    throttle: Rate | None = None
    examples_match: tuple[Example, ...] = ()
    examples_no_match: tuple[Example, ...] = ()
    enabled: bool = True
    tags: tuple[str, ...] = ()

    def watches_source(self, source: str) -> bool:
        if not any(fnmatch.fnmatchcase(source, glob) for glob in self.sources):
            return False
        return not any(fnmatch.fnmatchcase(source, glob) for glob in self.exclude_sources)

    def applies_to(self, source: str, language: str | None) -> bool:
        """Whether the rule looks at articles of this source and language at all."""
        return self.watches_source(source) and (
            not self.languages or (language or "") in self.languages)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    warnings: tuple[str, ...] = ()

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}
