"""Channel types by name: the one explicit list of what ``type = "..."`` can be."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from monitor.channels.base import Channel
from monitor.channels.console import ConsoleChannel
from monitor.config import ChannelSettings, ConsoleChannelSettings
from monitor.errors import ConfigError


def _console(name: str, settings: ChannelSettings) -> Channel:
    assert isinstance(settings, ConsoleChannelSettings)
    return ConsoleChannel(name, settings)


FACTORIES: Mapping[str, Callable[[str, ChannelSettings], Channel]] = {
    "console": _console,
}


def build_channels(wanted: Mapping[str, ChannelSettings]) -> dict[str, Channel]:
    """Build the channels that alerts are routed to; errors name the channel's key."""
    channels: dict[str, Channel] = {}
    problems: list[str] = []
    for name, settings in wanted.items():
        factory = FACTORIES.get(settings.type)
        if factory is None:
            problems.append(f"channels.{name}.type: channel type {settings.type!r} is not"
                            f" available yet (available: {', '.join(FACTORIES)})")
            continue
        channels[name] = factory(name, settings)
    if problems:
        raise ConfigError(problems)
    return channels
