"""Channel *apprise*: hand alerts to the apprise library (ntfy, Teams, Discord, Telegram, …).

Optional: install ``newsmon[apprise]``. apprise reports only success or failure,
so every failure is a transient server error here; its own log says which
service refused. The URLs hold tokens: they are never logged or reported.
"""

from __future__ import annotations

from typing import Any

from monitor import render
from monitor.channel_settings import AppriseChannelSettings
from monitor.errors import ChannelError, ChannelFailure, ConfigError
from monitor.records import Alert, Digest
from monitor.templates import render_template


class AppriseChannel:
    pace = 0.0

    def __init__(self, name: str, settings: AppriseChannelSettings) -> None:
        try:
            import apprise
        except ImportError:
            raise ConfigError([f"channels.{name}: the apprise channel needs the apprise"
                               " library: pip install 'newsmon[apprise]'"]) from None
        self.name = name
        self._settings = settings
        self._apprise: Any = apprise.Apprise()
        for index, url in enumerate(settings.urls):
            if not self._apprise.add(url.get_secret_value()):
                raise ConfigError([f"channels.{name}.urls[{index}]: apprise does not"
                                   " understand this URL"])

    async def send(self, alert: Alert, thread: str | None = None) -> str | None:
        if self._settings.templates.text:
            body = render_template(self._settings.templates.text, alert)
        else:
            body = render.plain_text(alert)
        title = (render_template(self._settings.templates.subject, alert)
                 if self._settings.templates.subject else render.summary_line(alert))
        await self._notify(render.one_line(title), render.clean(body))
        return None

    async def send_digest(self, digest: Digest) -> None:
        if digest.alerts:
            await self._notify(f"newsmon digest: {len(digest.alerts)} alerts",
                               render.clean(render.digest_text(digest)))

    async def close(self) -> None:
        return None

    async def _notify(self, title: str, body: str) -> None:
        ok = await self._apprise.async_notify(title=title, body=body)
        if not ok:
            raise ChannelError(self.name, "apprise could not deliver to one or more services",
                               ChannelFailure.SERVER)
