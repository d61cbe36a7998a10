"""What every channel is: something that sends an alert or a digest, or raises ``ChannelError``.

Channels never decide *whether* to send (plan and deliver do that) and never
touch the store. They render: text from the internet is escaped for their
format (Slack mrkdwn, email headers and HTML) here and nowhere else. Each
channel type lives in its own module and is listed in ``monitor.channels.registry``.

A channel raises ``ChannelError`` with a ``kind`` from ``ChannelFailure``;
``permanent=True`` for failures a retry cannot fix (bad credentials, unknown
channel, 404 webhook): deliver stops sending to the channel until it is fixed.
"""

from __future__ import annotations

from typing import Protocol

from monitor.records import Alert, Digest


class Channel(Protocol):
    name: str
    pace: float  # at least this many seconds between two messages (Slack: about 1)

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        """Deliver one alert (``thread``: the id of the message a follow-up replies to).

        Returns this message's id in the channel (Slack ``ts``, email Message-ID)
        when the channel has one, so follow-ups can reply to it; else ``None``.
        """
        ...

    async def send_digest(self, digest: Digest) -> None:
        """Deliver a digest: one message, or several split at item boundaries."""
        ...

    async def close(self) -> None:
        """Release connections; called once at shutdown."""
        ...
