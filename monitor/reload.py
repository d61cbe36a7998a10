"""The configuration as one validated whole, and the files to watch for changes.

``load_configuration`` is the one loader of the settings *and* the rules, used at
start and at every reload: a set is accepted only when the file, every rule file
and the routes between them all validate, so a reload either replaces the whole
running set or changes nothing. ``watch_changes`` waits for the configuration
file or a rule file to change.

This module reads files only; it does not touch the running daemon.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

from monitor.config import Settings, load_settings
from monitor.errors import ConfigError, RuleError, RuleSetError
from monitor.rules.load import load_rules
from monitor.rules.model import RuleSet

log = logging.getLogger("newsmon.reload")

RULE_SUFFIXES = (".yaml", ".yml")
DEBOUNCE_MS = 500  # editors write a file in several steps: wait for the burst to end


@dataclass(frozen=True, slots=True)
class Configuration:
    path: Path
    settings: Settings
    rules: RuleSet


def load_configuration(path: Path) -> Configuration:
    """Settings, rules and routes, all valid; else ``ConfigError`` or ``RuleSetError``."""
    settings = load_settings(path)
    rules = load_rules(settings.rules.paths)
    check_routes(settings, rules)
    return Configuration(path.resolve(), settings, rules)


def check_routes(settings: Settings, rules: RuleSet) -> None:
    """Every channel a rule names exists, and every channel alerts go to is usable."""
    errors: list[RuleError] = []
    for rule in rules.rules:
        for name in rule.notify:
            if name not in settings.channels:
                where = rule.notify_origin or rule.origin
                errors.append(RuleError(where.path, where.line, where.col,
                                        f"notify: unknown channel {name!r} (configured: "
                                        f"{', '.join(settings.channels) or 'none'})"))
    if errors:
        raise RuleSetError(errors)
    problems = []
    for name in sorted(used_channels(settings, rules)):
        channel = settings.channels[name]
        configured = getattr(channel, "configured", lambda: True)()
        if not configured:
            problems.append(f"channels.{name}: alerts are routed here but it is not configured"
                            " (see docs/configuration.md)")
    if problems:
        raise ConfigError(problems)


def used_channels(settings: Settings, rules: RuleSet) -> set[str]:
    """The channels alerts can be routed to: the rules', the defaults' and health's."""
    return ({name for rule in rules.rules for name in rule.notify}
            | set(settings.defaults.channels) | set(settings.health_channels))


def rejection_lines(error: ConfigError | RuleSetError) -> list[str]:
    """One line per problem: ``PATH: key: message`` or ``PATH:LINE:COL: error: message``."""
    if isinstance(error, ConfigError):
        return error.lines()
    return [str(e) for e in error.errors]


@dataclass(frozen=True, slots=True)
class WatchedPaths:
    """What a reload reads: the configuration file, rule folders, single rule files."""

    config: Path
    rule_folders: frozenset[Path]
    rule_files: frozenset[Path]

    @classmethod
    def of(cls, configuration: Configuration) -> WatchedPaths:
        paths = [p.resolve() for p in configuration.settings.rules.paths]
        return cls(configuration.path, frozenset(p for p in paths if p.is_dir()),
                   frozenset(p for p in paths if not p.is_dir()))

    def wanted(self, change: Change, name: str) -> bool:
        path = Path(name)
        if path == self.config or path in self.rule_files:
            return True
        return path.suffix in RULE_SUFFIXES and any(
            path.is_relative_to(folder) for folder in self.rule_folders)

    @property
    def flat_folders(self) -> set[Path]:
        """Folders whose own entries matter: the configuration's, those of single rule files."""
        return {p.parent for p in (self.config, *self.rule_files) if p.parent.is_dir()}


async def watch_changes(paths: WatchedPaths, on_change: Callable[[str], Awaitable[None]],
                        stop: asyncio.Event) -> None:
    """Call ``on_change(what)`` whenever a watched file changes, until ``stop`` is set.

    Rule folders are watched recursively; the configuration's own folder is not (it
    may hold much else), so a whole tree is never watched for one file.
    """
    async def watch(folders: set[Path], recursive: bool) -> None:
        if not folders:
            return
        async for changes in awatch(*sorted(folders), watch_filter=paths.wanted,
                                    debounce=DEBOUNCE_MS, stop_event=stop, recursive=recursive):
            names = sorted({Path(name).name for _, name in changes})
            await on_change(f"{', '.join(names)} changed")

    await asyncio.gather(watch(paths.flat_folders, recursive=False),
                         watch(set(paths.rule_folders), recursive=True))
