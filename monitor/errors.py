"""Every error newsmon raises on purpose, as one tree.

    NewsmonError                 anything newsmon reports as one clear line
    ├── ConfigError              a configuration problem; carries the key path
    ├── RuleError                a rule file problem; carries path, line, column
    ├── QueryError               a query that does not parse; carries the offset in the query
    ├── SourceError              a source could not be polled; carries the source name and URL
    │   ├── FetchError           the transfer failed (timeout, HTTP status, too large, ...)
    │   └── ParseError           the body is not a feed we can read
    ├── ChannelError             a channel could not deliver; carries the channel and a reason
    └── StoreError               the state database cannot be used (e.g. schema newer than us)

Each error's ``str()`` is the one line a user sees. Failure kinds come from small
closed sets (``FetchFailure``, ``ChannelFailure``) so logs and metrics can group
them. Errors never hold secrets: channel errors are built from redacted text.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class NewsmonError(Exception):
    """Base class: something newsmon can explain in one line."""


class ConfigError(NewsmonError):
    """One or more problems in the configuration, each naming its key path."""

    def __init__(self, problems: Sequence[str], path: Path | None = None) -> None:
        self.problems = list(problems)
        self.path = path
        super().__init__("; ".join(self.problems))

    def lines(self) -> list[str]:
        prefix = f"{self.path}: " if self.path else ""
        return [f"{prefix}{problem}" for problem in self.problems]


class RuleError(NewsmonError):
    """A problem at a position in a rule file; ``severity`` is "error" or "warning"."""

    def __init__(
        self, path: Path | str, line: int, col: int, message: str, severity: str = "error"
    ) -> None:
        self.path = str(path)
        self.line = line
        self.col = col
        self.message = message
        self.severity = severity
        super().__init__(f"{self.path}:{line}:{col}: {severity}: {message}")


class RuleSetError(NewsmonError):
    """A rule set that cannot run: every error found, so all are reported at once."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class QueryError(NewsmonError):
    """A query that does not parse; ``offset`` is the 0-based index in the query text."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at character {offset + 1})")


class FetchFailure(enum.StrEnum):
    """Why a fetch failed: a closed set, used as a log field and metric label."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    HTTP_STATUS = "http-status"
    TOO_LARGE = "too-large"
    REFUSED = "refused"
    NOT_FOUND = "not-found"


class SourceError(NewsmonError):
    """A source could not be polled this time."""

    def __init__(self, source: str, url: str, reason: str) -> None:
        self.source = source
        self.url = url
        self.reason = reason
        super().__init__(f"source {source} ({url}): {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields: a parse error crosses from a worker process as a pickle.
        return type(self), (self.source, self.url, self.reason)


class FetchError(SourceError):
    """The transfer failed; ``kind`` says how, ``retry_after`` is a server's wish in seconds."""

    def __init__(
        self,
        source: str,
        url: str,
        reason: str,
        kind: FetchFailure,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(source, url, reason)
        self.kind = kind
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.source, self.url, self.reason, self.kind, self.retry_after)


class ParseError(SourceError):
    """The body could not be read as a feed ("not a feed", malformed, refused markup)."""


class ChannelFailure(enum.StrEnum):
    """Why a delivery failed: a closed set, used as a log field and metric label."""

    CLIENT = "client"
    SERVER = "server"
    AUTH = "auth"
    RATE_LIMITED = "rate-limited"
    TIMEOUT = "timeout"
    CONNECT = "connect"


class ChannelError(NewsmonError):
    """A channel could not deliver. ``permanent`` errors are not retried."""

    def __init__(
        self,
        channel: str,
        reason: str,
        kind: ChannelFailure,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.channel = channel
        self.reason = reason
        self.kind = kind
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(f"channel {channel}: {reason}")


class StoreError(NewsmonError):
    """The state database cannot be used as it is."""
