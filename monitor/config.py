"""Configuration: one loader for the daemon and every command.

Sources of settings, strongest first: environment variables (``NEWSMON_`` prefix,
``__`` between levels), files in ``$CREDENTIALS_DIRECTORY`` (systemd credentials,
named like the variables), the TOML file, then the defaults below. Unknown keys
are errors. Relative paths resolve against the configuration file's folder.

This module reads files and the environment; it opens no connection.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from monitor.channel_settings import (
    CHANNEL_TYPES,
    ChannelSettings,
    ConsoleChannelSettings,
    EmailChannelSettings,
)
from monitor.config_references import (
    NAME_PATTERN,
    References,
    reference_problems,
    written_references,
)
from monitor.credentials import ENV_PREFIX, CredentialsDirectorySource
from monitor.durations import Duration, OptionalDuration
from monitor.errors import ConfigError
from monitor.identity import IdentityMode

DEFAULT_CONFIG_NAME = "newsmon.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    url: str = "sqlite:///newsmon.db"


class RulesSettings(_Section):
    paths: list[Path] = Field(default_factory=lambda: [Path("rules")])


class DefaultsSettings(_Section):
    interval: Duration = timedelta(minutes=15)
    channels: list[str] = Field(default_factory=lambda: ["console"])
    max_age: OptionalDuration = timedelta(days=7)


class StoriesSettings(_Section):
    """Clustering the same story across outlets (see docs/configuration.md)."""

    window: Duration = timedelta(hours=72)
    threshold: float = Field(default=0.14, gt=0.0, le=1.0)


class HealthSettings(_Section):
    """Operational alerts about the sources themselves (see docs/configuration.md)."""

    channels: list[str] | None = None  # default: defaults.channels
    failing_after: Duration = timedelta(hours=6)
    silence_factor: float = Field(default=4.0, gt=1.0)
    min_history: int = Field(default=5, ge=1)


class FetchSettings(_Section):
    user_agent: str = "newsmon (+https://github.com/newsmon/newsmon)"
    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=30)
    total_timeout: Duration = timedelta(seconds=60)
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_items: int = Field(default=1000, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    concurrency: int = Field(default=16, gt=0)
    per_host: int = Field(default=4, gt=0)


class ParseSettings(_Section):
    """Feed parsing and page extraction run in worker processes (see docs/configuration.md)."""

    # Each worker holds about 16 MB of its own; more than a few rarely pays on a poller.
    workers: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 4), gt=0)
    deadline: Duration = timedelta(seconds=30)


class FullTextSettings(_Section):
    """Article pages fetched for sources with ``full_text = true`` (see docs/configuration.md)."""

    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=15)
    total_timeout: Duration = timedelta(seconds=20)
    max_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    per_host: int = Field(default=2, gt=0)
    max_pages: int = Field(default=50, gt=0)

    def fetch_settings(self, fetch: FetchSettings) -> FetchSettings:
        """The feed fetch settings with the page limits in place of the feed limits."""
        return fetch.model_copy(update={
            "connect_timeout": self.connect_timeout, "read_timeout": self.read_timeout,
            "total_timeout": self.total_timeout, "max_bytes": self.max_bytes,
            "per_host": self.per_host,
        })


class DeliverySettings(_Section):
    interval: Duration = timedelta(seconds=5)
    max_age: Duration = timedelta(hours=24)
    batch: int = Field(default=50, gt=0)
    lease: Duration = timedelta(minutes=5)  # a claimed alert's send must end within it


class ClusterSettings(_Section):
    """Several nodes on one database: leases and heartbeats (see docs/operations.md)."""

    lease: Duration = timedelta(seconds=60)
    heartbeat: Duration = timedelta(seconds=10)
    claim_every: Duration = timedelta(seconds=1)

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> ClusterSettings:
        if self.heartbeat * 2 > self.lease:
            raise ValueError("cluster.heartbeat must be at most half of cluster.lease (a node"
                             " renews its leases by heartbeating)")
        return self


class HttpSettings(_Section):
    """The optional health and metrics endpoint (see docs/operations.md)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9874, ge=0, le=65535)  # 0: any free port (it is logged)


class LoggingSettings(_Section):
    """How log lines are written (see docs/operations.md, "Logs")."""

    format: Literal["auto", "text", "json"] = "auto"  # auto: JSON under journald, else text


class ReloadSettings(_Section):
    """Reloading without a restart (see docs/operations.md, "Reload")."""

    watch: bool = True  # also reload when the configuration or a rule file changes


class SourceSettings(_Section):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    url: str
    interval: Duration | None = None
    enabled: bool = True
    max_age: OptionalDuration | Literal["default"] = "default"
    allow_private: bool = False
    expect_every: Duration | None = None  # without it, the usual gap is learned
    full_text: bool = False  # fetch each new article's page and match its main text
    identity: IdentityMode = "guid"  # what makes two of its items one article

    @field_validator("url")
    @classmethod
    def _url_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


def _default_channels() -> dict[str, ChannelSettings]:
    return {"console": ConsoleChannelSettings(type="console")}


class Settings(BaseSettings):
    """The whole configuration. Build it with ``load_settings``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    storage: StorageSettings = StorageSettings()
    rules: RulesSettings = RulesSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    fetch: FetchSettings = FetchSettings()
    delivery: DeliverySettings = DeliverySettings()
    cluster: ClusterSettings = ClusterSettings()
    health: HealthSettings = HealthSettings()
    stories: StoriesSettings = StoriesSettings()
    http: HttpSettings = HttpSettings()
    logging: LoggingSettings = LoggingSettings()
    reload: ReloadSettings = ReloadSettings()
    parse: ParseSettings = ParseSettings()
    full_text: FullTextSettings = FullTextSettings()
    sources: list[SourceSettings] = Field(default_factory=list)
    channels: dict[str, ChannelSettings] = Field(default_factory=_default_channels)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats credential files beats the TOML file (passed as init kwargs).
        return env_settings, CredentialsDirectorySource(settings_cls), init_settings

    @model_validator(mode="before")
    @classmethod
    def _builtin_console(cls, data: Any) -> Any:
        # "console" always exists, so the default `defaults.channels` works with any file.
        channels = data.get("channels") if isinstance(data, dict) else None
        if isinstance(channels, dict) and "console" not in channels:
            return {**data, "channels": {"console": {"type": "console"}, **channels}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _fold_env_channel_names(cls, data: Any) -> Any:
        # Environment variable names cannot hold "-": NEWSMON_CHANNELS__DESK_SLACK__TOKEN
        # arrives as channel "desk_slack" and belongs to the channel "desk-slack".
        if not isinstance(data, dict) or not isinstance(data.get("channels"), dict):
            return data
        channels: dict[str, Any] = dict(data["channels"])
        for key in list(channels):
            twin = key.replace("_", "-")
            if twin != key and twin in channels and isinstance(channels[key], dict):
                merged = dict(channels[twin]) if isinstance(channels[twin], dict) else {}
                merged.update(channels.pop(key))
                channels[twin] = merged
        return {**data, "channels": channels}

    @model_validator(mode="wrap")
    @classmethod
    def _check_references(
        cls, data: Any, handler: ModelWrapValidatorHandler[Settings]
    ) -> Settings:
        try:
            settings = handler(data)
        except ValidationError as exc:
            # Other values are invalid: check the names as written too, so that one run
            # reports every problem (a duplicate source name beside a malformed one).
            written = written_references(
                data, DefaultsSettings().channels, _default_channels().keys())
            problems = reference_problems(written)
            if not problems:
                raise
            raise _with_problems(exc, problems, data) from None
        problems = reference_problems(References(
            source_names=[s.name for s in settings.sources],
            channels=settings.channels.keys(),
            default_channels=settings.defaults.channels,
            health_channels=settings.health.channels,
        ))
        if problems:
            raise ValueError("\n".join(problems))
        return settings

    @property
    def health_channels(self) -> list[str]:
        return self.defaults.channels if self.health.channels is None else self.health.channels

    def source_interval(self, source: SourceSettings) -> timedelta:
        return source.interval or self.defaults.interval

    def source_max_age(self, source: SourceSettings) -> timedelta | None:
        return self.defaults.max_age if source.max_age == "default" else source.max_age


def find_config_path(explicit: str | None) -> Path:
    """``--config``, then ``$NEWSMON_CONFIG``, then ``./newsmon.toml``."""
    chosen = explicit or os.environ.get("NEWSMON_CONFIG") or DEFAULT_CONFIG_NAME
    return Path(chosen)


def load_settings(path: Path) -> Settings:
    """Read, validate and resolve the configuration; every problem is in the ``ConfigError``."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(["configuration file not found"], path) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror}"], path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text: {exc.reason} at byte {exc.start}"], path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], path) from None
    try:
        settings = Settings(**raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc), path) from None
    return resolve_paths(settings, path.resolve().parent)


def resolve_paths(settings: Settings, base: Path) -> Settings:
    """Make relative file paths in the settings relative to ``base`` (the config's folder)."""
    storage_url = settings.storage.url
    prefix = "sqlite:///"
    if storage_url.startswith(prefix) and not storage_url.startswith(prefix + "/"):
        tail = storage_url[len(prefix) :]
        if tail and tail != ":memory:":
            storage_url = prefix + str(base / tail)
    rule_paths = [p if p.is_absolute() else base / p for p in settings.rules.paths]
    sources = [
        s.model_copy(update={"url": resolve_source_url(s.url, base)}) for s in settings.sources
    ]
    channels: dict[str, ChannelSettings] = {
        name: (c.model_copy(update={"ca_file": base / c.ca_file})
               if isinstance(c, EmailChannelSettings) and c.ca_file and not c.ca_file.is_absolute()
               else c)
        for name, c in settings.channels.items()
    }
    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(update={"url": storage_url}),
            "rules": settings.rules.model_copy(update={"paths": rule_paths}),
            "sources": sources,
            "channels": channels,
        }
    )


def resolve_source_url(url: str, base: Path) -> str:
    """A source URL that is a relative file path becomes absolute; URLs stay as they are."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.IGNORECASE):
        return url
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else base / path)


def _describe(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for error in exc.errors():
        where = _format_loc(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.extend(f"{where}: {line}" if where else line for line in message.splitlines())
    return problems


def _with_problems(exc: ValidationError, problems: list[str], data: Any) -> ValidationError:
    """``exc`` with ``problems`` added as errors of the whole configuration (``_describe``
    prints their lines as they are)."""
    carried = [InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"],
                                input=e["input"]) for e in exc.errors()]
    added = [InitErrorDetails(type=PydanticCustomError("value_error", problem), loc=(),
                              input=data) for problem in problems]
    return ValidationError.from_exception_data(exc.title, [*carried, *added])


def _format_loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    items = list(loc)
    # A discriminated union adds the tag ("slack") after the channel name: not a key.
    if len(items) > 2 and items[0] == "channels" and items[2] in CHANNEL_TYPES:
        del items[2]
    for item in items:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def as_mapping(settings: Settings) -> Mapping[str, Any]:
    """The settings as plain data with secrets masked (for ``status`` and debugging)."""
    return settings.model_dump(mode="json")
