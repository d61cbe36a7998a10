"""CPU work off the event loop, in worker processes, each job under a deadline.

Parsing a feed and extracting an article page are CPU work on hostile input. In a
thread they would hold the event loop's process hostage: a thread cannot be
stopped, so a parse that runs away (feedparser on one element with 40,000
attributes takes half a minute) would keep its thread and a core until it ended.
A process can be killed.

``WorkerPool`` keeps ``size`` worker processes; each runs one job at a time. A
job's deadline counts from the moment a worker takes it (waiting for a free
worker does not count). A job that overruns gets its worker killed and replaced
and raises ``JobTimeout``; the other workers and their jobs carry on. Arguments
and results cross as pickles (bytes in, typed records out): the cost per job is
a copy, never a process start.

Workers are forked from a fork server that has already imported the parsing
modules, so starting or replacing one costs a fork, not an interpreter start;
they start on first use, so building a pool does no I/O. A worker ignores SIGINT
and SIGTERM: a Ctrl-C reaches the whole process group and systemd signals the whole
control group, but the daemon decides when its workers go (it kills a running job
itself, so the job's source is not charged with a failure while newsmon stops). A
worker exits when its socket closes, so none outlives a daemon that was killed.

The daemon's side of each socket is an asyncio stream: sending a job and waiting for
its answer never block the event loop, and never take a thread.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import pickle
import signal
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

T = TypeVar("T")

# Imported once by the fork server, so every worker starts with them loaded.
PRELOAD = ("monitor.parse", "monitor.extract", "trafilatura")

_LENGTH = struct.Struct("!Q")  # each message: its length, then a pickle
_START_RETRIES = (0.02, 0.1, 0.5)  # seconds between attempts to start a worker


class JobTimeout(Exception):
    """A job ran past its deadline; its worker was killed."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        super().__init__(f"stopped after {deadline:g}s")


class WorkerLost(Exception):
    """A worker process ended in the middle of a job (killed from outside, out of memory),
    or none could be started."""


@dataclass(eq=False, slots=True)  # compared and hashed by identity
class _Worker:
    process: BaseProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class WorkerPool:
    """``await pool.run(deadline, function, *args)`` runs ``function(*args)`` in a worker.

    ``function`` must be importable by name (a module-level function) and its
    arguments and result picklable. Its exceptions are raised here.
    """

    def __init__(self, size: int, preload: Sequence[str] = PRELOAD) -> None:
        self._size = max(1, size)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(preload))
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._slots: asyncio.Semaphore | None = None  # made in the loop that uses the pool
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    async def __aenter__(self) -> WorkerPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def run(self, deadline: float, function: Callable[..., T], *args: Any) -> T:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._size)
        async with self._slots:
            worker = await self._take()
            try:
                async with asyncio.timeout(deadline):
                    ok, value = await _exchange(worker, (function, args))
            except TimeoutError:
                await self._discard(worker)
                raise JobTimeout(deadline) from None
            except BaseException:
                # Cancelled (shutdown) or the worker died: its state is unknown.
                await self._discard(worker)
                raise
            self._busy.discard(worker)
            if self._closed:
                await _stop([worker])
            else:
                self._idle.append(worker)
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    async def close(self) -> None:
        """Stop every worker (a running job is killed); the pool cannot be used again."""
        self._closed = True
        for worker in self._busy:  # its job sees the end of the stream and cleans up
            worker.process.kill()
        idle, self._idle = self._idle, []
        await _stop(idle)

    async def _take(self) -> _Worker:
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        if self._idle:
            worker = self._idle.pop()
        else:
            loop = asyncio.get_running_loop()
            try:
                process, ours = await loop.run_in_executor(None, self._start)
            except (OSError, EOFError) as exc:  # the fork server died (it restarts next time)
                raise WorkerLost(f"cannot start a worker process ({exc})") from None
            reader, writer = await asyncio.open_connection(sock=ours)
            worker = _Worker(process, reader, writer)
        self._busy.add(worker)
        return worker

    async def _discard(self, worker: _Worker) -> None:
        """Kill a worker whose job overran or was abandoned; a new one starts on demand."""
        self._busy.discard(worker)
        worker.process.kill()
        await _stop([worker])

    def _start(self) -> tuple[BaseProcess, socket.socket]:
        # multiprocessing starts a new fork server only once it can reap the old one; a
        # fork server killed a moment ago may not be reapable yet, and asking it for a
        # worker is refused. Give the kernel a moment rather than losing the job. Each
        # attempt has its own socket pair: a worker forked by an attempt that then
        # failed must not share a socket with the next one.
        for pause in (*_START_RETRIES, None):
            ours, theirs = socket.socketpair()
            process = self._context.Process(target=_serve, args=(theirs,), daemon=True,
                                            name="newsmon-worker")
            try:
                process.start()
            except (OSError, EOFError):
                ours.close()
                if pause is None:
                    raise
                time.sleep(pause)
                continue
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()  # only the worker holds its end: its death is our end of file
            return process, ours
        raise AssertionError("unreachable")


async def _exchange(worker: _Worker, job: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    data = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        worker.writer.write(_LENGTH.pack(len(data)))
        worker.writer.write(data)
        await worker.writer.drain()
        size = _LENGTH.unpack(await worker.reader.readexactly(_LENGTH.size))[0]
        answer = await worker.reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        raise WorkerLost("the worker process ended during the job") from None
    return pickle.loads(answer)


async def _stop(workers: list[_Worker]) -> None:
    """End these workers (an idle one exits when its socket closes) and wait for them."""
    for worker in workers:
        worker.writer.close()
    await asyncio.get_running_loop().run_in_executor(None, _reap, workers)


def _reap(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.process.join(timeout=2)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=2)


def _serve(sock: socket.socket) -> None:
    """A worker's life: take a job, answer ``(True, result)`` or ``(False, exception)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with sock, sock.makefile("rwb") as stream:
        while True:
            job = _read(stream)
            if job is None:
                return
            function, args = pickle.loads(job)
            try:
                reply: tuple[bool, Any] = (True, function(*args))
            except Exception as exc:
                reply = (False, exc)
            try:
                data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # a result or an exception that does not pickle
                data = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
            try:
                stream.write(_LENGTH.pack(len(data)))
                stream.write(data)
                stream.flush()
            except OSError:
                return


def _read(stream: io.BufferedIOBase) -> bytes | None:
    """One message, or ``None`` at the end of the stream."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    size = _LENGTH.unpack(header)[0]
    data = stream.read(size)
    return data if len(data) == size else None
