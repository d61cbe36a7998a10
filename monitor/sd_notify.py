"""systemd's notification protocol (sd_notify(3)): tell the service manager how we are.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``, an ``AF_UNIX`` datagram
socket (a path, or an abstract name written with a leading ``@``), and with
``WatchdogSec=`` also ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``). Each message
is one datagram of ``KEY=VALUE`` lines: ``READY=1`` once the service works,
``RELOADING=1`` / ``READY=1`` around a reload, ``STOPPING=1``, ``STATUS=...`` a
one-line state shown by ``systemctl status``, ``WATCHDOG=1`` a sign of life that
must come at least every ``WATCHDOG_USEC`` or systemd restarts the service.

Without ``$NOTIFY_SOCKET`` (a terminal, a test) every call does nothing. A
notification that cannot be sent is logged once and otherwise ignored: it must
never stop the daemon. This module decides nothing about *when* to notify.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("newsmon.systemd")


class Notifier:
    """Sends notifications to the socket systemd named (or nowhere)."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        self._watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._socket: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        usec: int | None = None
        pid = env.get("WATCHDOG_PID", "").strip()
        # The watchdog is ours unless systemd named another process (sd_watchdog_enabled(3)).
        if not pid or pid == str(os.getpid()):
            try:
                usec = int(env.get("WATCHDOG_USEC", "").strip())
            except ValueError:
                usec = None
        return cls(env.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two ``WATCHDOG=1``: half of what systemd allows, as it advises."""
        if self._watchdog_usec is None or not self.enabled:
            return None
        return self._watchdog_usec / 2_000_000

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        self.notify("RELOADING=1", "STATUS=reloading the configuration and rules")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def notify(self, *lines: str) -> bool:
        """Send one datagram of ``lines``; ``False`` when it could not be sent."""
        if self.address is None:
            return False
        message = "\n".join(line.replace("\n", " ") for line in lines).encode()
        try:
            if self._socket is None:
                self._socket = self._connect(self.address)
            self._socket.send(message)
        except OSError as exc:
            self._drop_socket()
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at %s: %s", self.address,
                            exc.strerror or type(exc).__name__)
            return False
        return True

    def close(self) -> None:
        self._drop_socket()

    @staticmethod
    def _connect(address: str) -> socket.socket:
        # "@name" is an abstract socket: the name starts with a NUL byte instead.
        target = "\0" + address[1:] if address.startswith("@") else address
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # Never wait on systemd: a full queue drops this one message, not the event loop.
        sock.setblocking(False)
        try:
            sock.connect(target)
        except OSError:
            sock.close()
            raise
        return sock

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
