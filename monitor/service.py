"""The process around the running daemon: signals, systemd notifications, the
watchdog, and reloads on SIGHUP or when a configuration or rule file changes.

- SIGTERM / SIGINT: ``STOPPING=1``, then the daemon stops (running jobs get a
  grace period, see ``Daemon.run``).
- SIGHUP, or a changed file: the whole set is loaded again (``load_configuration``).
  A set that does not validate is rejected: each problem is logged as one line
  (``PATH:LINE:COL: error: ...`` for rules) and the running set keeps running. A
  valid one replaces settings, rules and channels at once (``Daemon.reconfigure``);
  polls already running finish with what they started with.
- ``READY=1`` once the first schedule is set (and after each reload),
  ``WATCHDOG=1`` from the event loop, every half of ``$WATCHDOG_USEC``, but only
  while the state database answers, so a hung loop or store gets the service
  restarted. ``STATUS=`` says what runs.

Builds nothing the daemon needs; ``cli.run_cmd`` builds the daemon and hands it here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping

from monitor.channel_settings import channel_fingerprint
from monitor.channels.base import Channel
from monitor.channels.registry import build_channels
from monitor.daemon import Daemon
from monitor.errors import ConfigError, NewsmonError, RuleSetError
from monitor.logs import setup_logging
from monitor.reload import (
    Configuration,
    WatchedPaths,
    load_configuration,
    rejection_lines,
    used_channels,
    watch_changes,
)
from monitor.sd_notify import Notifier
from monitor.secrets import channel_secrets

log = logging.getLogger("newsmon.service")


class Service:
    def __init__(self, configuration: Configuration, daemon: Daemon, notifier: Notifier,
                 log_level: str) -> None:
        self.configuration = configuration
        self.daemon = daemon
        self.notifier = notifier
        self._log_level = log_level
        self._reloading: asyncio.Task[None] | None = None
        self._reload_again: str | None = None
        self._watching: tuple[WatchedPaths, asyncio.Event, asyncio.Task[None]] | None = None

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def request_stop(signum: signal.Signals) -> None:
            if not stop.is_set():
                log.info("%s received: stopping", signum.name)
                self.notifier.stopping()
                stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload, "SIGHUP")
        watchdog = asyncio.create_task(self._feed_watchdog(), name="newsmon-watchdog")
        self._watch(WatchedPaths.of(self.configuration))
        try:
            await self.daemon.run(stop, ready=self._ready)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            watchdog.cancel()
            helpers: list[asyncio.Task[None]] = [watchdog]
            if self._reloading is not None:
                self._reloading.cancel()
                helpers.append(self._reloading)
            if self._watching is not None:
                self._watching[1].set()
                helpers.append(self._watching[2])
            await asyncio.gather(*helpers, return_exceptions=True)

    def _ready(self) -> None:
        self.notifier.ready(f"running: {self.daemon.summary()}")

    # --- reload ----------------------------------------------------------------------------

    def request_reload(self, why: str) -> None:
        """Reload soon; requests that arrive during a reload make one more reload after it."""
        if self._reloading is not None and not self._reloading.done():
            self._reload_again = why
            return
        self._reloading = asyncio.create_task(self._reload_until_settled(why))

    async def _reload_until_settled(self, why: str) -> None:
        reason: str | None = why
        while reason is not None:
            self._reload_again = None
            await self.reload(reason)
            reason = self._reload_again

    async def reload(self, why: str) -> bool:
        """Load the whole set again; run it if it validates. ``False``: rejected."""
        log.info("reloading the configuration and rules (%s)", why)
        self.notifier.reloading()
        try:
            new = await asyncio.to_thread(load_configuration, self.configuration.path)
            channels = self._channels_for(new)
        except (ConfigError, RuleSetError) as exc:
            for line in rejection_lines(exc):
                log.error("reload rejected: %s", line)
            return self._rejected()
        except NewsmonError as exc:
            log.error("reload rejected: %s", exc)
            return self._rejected()
        for warning in new.rules.warnings:
            log.warning("%s", warning)
        setup_logging(self._log_level, channel_secrets(new.settings),
                      new.settings.logging.format)
        await self.daemon.reconfigure(new.settings, new.rules, channels)
        self.configuration = new
        self._watch(WatchedPaths.of(new))
        self._ready()
        return True

    def _rejected(self) -> bool:
        log.error("reload rejected: still running the previous set (%s)", self.daemon.summary())
        self.notifier.ready(f"running: {self.daemon.summary()}; the last reload was rejected"
                            " (see the log)")
        return False

    def _channels_for(self, new: Configuration) -> Mapping[str, Channel]:
        """The channels the new set routes to: unchanged ones are kept, the others built."""
        old_settings = self.configuration.settings.channels
        kept: dict[str, Channel] = {}
        wanted = {}
        for name in sorted(used_channels(new.settings, new.rules)):
            settings = new.settings.channels[name]
            channel = self.daemon.channels.get(name)
            before = old_settings.get(name)
            if (channel is not None and before is not None
                    and channel_fingerprint(before) == channel_fingerprint(settings)):
                kept[name] = channel
            else:
                wanted[name] = settings
        return {**kept, **build_channels(wanted)}

    # --- file changes ----------------------------------------------------------------------

    def _watch(self, paths: WatchedPaths) -> None:
        """Watch ``paths`` (again, if a reload changed which files the set is read from)."""
        if self._watching is not None:
            if self._watching[0] == paths and self.configuration.settings.reload.watch:
                return
            self._watching[1].set()  # the old watcher ends on its own
            self._watching = None
        if not self.configuration.settings.reload.watch:
            return
        stop = asyncio.Event()
        task = asyncio.create_task(self._watch_files(paths, stop), name="newsmon-watch")
        self._watching = (paths, stop, task)

    async def _watch_files(self, paths: WatchedPaths, stop: asyncio.Event) -> None:
        async def changed(what: str) -> None:
            self.request_reload(what)

        try:
            await watch_changes(paths, changed, stop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # SIGHUP still reloads; say why files are not watched
            log.warning("cannot watch the configuration and rule files (%s: %s); reload with"
                        " SIGHUP (systemctl reload newsmon)", type(exc).__name__, exc)

    # --- watchdog --------------------------------------------------------------------------

    async def _feed_watchdog(self) -> None:
        """``WATCHDOG=1`` every half watchdog period, while the loop turns and the store answers."""
        interval = self.notifier.watchdog_interval
        if interval is None:
            return
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            alive = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    alive = await self.daemon.alive()
            if alive:
                self.notifier.watchdog()
            else:
                log.warning("the state database did not answer within %gs: systemd's watchdog"
                            " is not fed", interval)
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
