"""What every channel is: something that sends one ``Alert`` or raises ``ChannelError``.

Channels never decide *whether* to send (plan and deliver do that) and never
touch the store. Each channel type lives in its own module and is listed in
``monitor.channels.registry``.
"""

from __future__ import annotations

from typing import Protocol

from monitor.records import Alert


class Channel(Protocol):
    name: str

    async def send(self, alert: Alert) -> None:
        """Deliver one alert; raise ``ChannelError`` (``permanent`` or not) on failure."""
        ...

    async def close(self) -> None:
        """Release connections; called once at shutdown."""
        ...
