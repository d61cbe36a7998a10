"""Channel types by name: the one explicit list of what ``type = "..."`` can be."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from monitor.channel_settings import ChannelSettings
from monitor.channels.apprise_channel import AppriseChannel
from monitor.channels.base import Channel
from monitor.channels.console import ConsoleChannel
from monitor.channels.email import EmailChannel
from monitor.channels.slack import SlackChannel
from monitor.channels.webhook import WebhookChannel
from monitor.errors import ConfigError

FACTORIES: Mapping[str, Callable[[str, Any], Channel]] = {
    "console": ConsoleChannel,
    "slack": SlackChannel,
    "email": EmailChannel,
    "webhook": WebhookChannel,
    "apprise": AppriseChannel,
}


def build_channel(name: str, settings: ChannelSettings) -> Channel:
    factory = FACTORIES.get(settings.type)
    if factory is None:
        raise ConfigError([f"channels.{name}.type: unknown channel type {settings.type!r}"
                           f" (one of {', '.join(FACTORIES)})"])
    return factory(name, settings)


def build_channels(wanted: Mapping[str, ChannelSettings]) -> dict[str, Channel]:
    """Build the channels that alerts are routed to; all problems in one ``ConfigError``."""
    channels: dict[str, Channel] = {}
    problems: list[str] = []
    for name, settings in wanted.items():
        try:
            channels[name] = build_channel(name, settings)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return channels
