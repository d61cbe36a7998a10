"""``newsmon run`` in a subprocess, its output collected line by line (end-to-end tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

from tests.conftest import REPO


class DaemonProcess:
    """``newsmon run ARGS`` as users run it; ``stdout``/``stderr`` fill as lines arrive."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})}, cwd=REPO,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            for stream, sink in ((self.process.stdout, self.stdout),
                                 (self.process.stderr, self.stderr))
        ]
        for pump in self._pumps:
            pump.start()

    @staticmethod
    def _pump(stream: object, sink: list[str]) -> None:
        with stream:  # type: ignore[attr-defined]
            for line in stream:  # type: ignore[attr-defined]
                sink.append(line)

    def wait_for(self, text: str, where: str = "stdout", timeout: float = 10,
                 *, pattern: bool = False) -> float:
        """Seconds until a line holds ``text`` (a regular expression with ``pattern``)."""
        sink = self.stdout if where == "stdout" else self.stderr
        found = (lambda line: re.search(text, line) is not None) if pattern else (
            lambda line: text in line)
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if any(found(line) for line in list(sink)):
                return time.monotonic() - started
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen in {where} within {timeout}s:\n"
                             + "".join(self.stdout) + "".join(self.stderr))

    def stop(self, signum: int) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(timeout=10)
        took = time.monotonic() - started
        for pump in self._pumps:
            pump.join(timeout=5)
        return code, took

    def kill(self) -> None:
        if self.process.poll() is None:
            self.stop(signal.SIGKILL)
