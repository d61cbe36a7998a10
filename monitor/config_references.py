"""Checks across the configuration: unique source names, channel names, channel references.

They run on the validated settings, and also on the data as written when some other
value is invalid, so that one run reports every problem instead of the next one only
after each fix. What cannot be read from invalid data (a list that is not a list, a
name that is not a string) is left to the error already reported about it.

Pure functions over plain data; knows the configuration's key names, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


@dataclass(frozen=True, slots=True)
class References:
    """The names the checks read; ``None`` where they could not be read."""

    source_names: Sequence[object]
    channels: Collection[str] | None
    default_channels: Sequence[object] | None
    health_channels: Sequence[object] | None


def written_references(
    data: object, default_channels: Sequence[str], builtin_channels: Collection[str]
) -> References:
    """The names as written in not-yet-validated data, with the given defaults filled in."""
    root = data if isinstance(data, dict) else {}
    sources = root.get("sources")
    channels = root.get("channels")
    return References(
        source_names=[s.get("name") if isinstance(s, dict) else None
                      for s in (sources if isinstance(sources, list) else [])],
        channels=(list(dict.fromkeys([*builtin_channels, *channels]))
                  if isinstance(channels, dict)
                  else list(builtin_channels) if channels is None else None),
        default_channels=_section_list(root, "defaults", default_channels),
        health_channels=_section_list(root, "health", None),
    )


def reference_problems(references: References) -> list[str]:
    """One ``key: problem`` line for each duplicate name, bad name and unknown channel."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, name in enumerate(references.source_names):
        if not isinstance(name, str):
            continue
        if name in seen:
            problems.append(f"sources[{index}].name: duplicate source name {name!r}")
        seen.add(name)
    if references.channels is None:
        return problems
    for name in references.channels:
        if not re.match(NAME_PATTERN, name):
            problems.append(
                f"channels.{name}: a channel name is lowercase letters, digits, - and _")
    for key, names in (("defaults", references.default_channels),
                       ("health", references.health_channels)):
        for index, channel in enumerate(names or []):
            if isinstance(channel, str) and channel not in references.channels:
                problems.append(f"{key}.channels[{index}]: unknown channel {channel!r}")
    return problems


def _section_list(
    root: dict[Any, Any], section: str, default: Sequence[str] | None
) -> Sequence[object] | None:
    table = root.get(section, {})
    value = table.get("channels", default) if isinstance(table, dict) else None
    return value if isinstance(value, list | tuple) or value is None else None
