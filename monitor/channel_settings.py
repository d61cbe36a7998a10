"""Channel settings: the ``[channels.NAME]`` tables of the configuration, one model a type.

Validated when the configuration loads (cron schedules, templates, digest rules),
so a channel's mistakes are configuration errors naming their key. No I/O.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from monitor.durations import Duration, RateLimit
from monitor.severity import Severity
from monitor.templates import check_template


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelTemplates(_Section):
    """Jinja2 overrides of a channel's default rendering (see docs/configuration.md)."""

    subject: str | None = None
    text: str | None = None
    html: str | None = None

    @model_validator(mode="after")
    def _compile(self) -> ChannelTemplates:
        for name in ("subject", "text", "html"):
            source = getattr(self, name)
            if source is not None:
                try:
                    check_template(source, html=name == "html")
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return self


class _ChannelBase(_Section):
    min_severity: Severity = Severity.INFO
    digest: str | None = None  # cron: "0 8 * * *"
    immediate: bool = True  # false with a digest: digest only
    follow_ups: Literal["thread", "digest", "none"] = "thread"
    throttle: RateLimit | None = None
    templates: ChannelTemplates = ChannelTemplates()

    @field_validator("digest")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _digest_needed(self) -> _ChannelBase:
        if self.digest is None and not self.immediate:
            raise ValueError("immediate = false needs a digest schedule (digest = \"0 8 * * *\")")
        if self.digest is None and self.follow_ups == "digest":
            raise ValueError('follow_ups = "digest" needs a digest schedule (digest = "0 8 * * *")')
        return self


class ConsoleChannelSettings(_ChannelBase):
    type: Literal["console"]
    color: Literal["auto", "always", "never"] = "auto"


class SlackChannelSettings(_ChannelBase):
    type: Literal["slack"]
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    api_url: str = "https://slack.com/api/"
    timeout: Duration = timedelta(seconds=15)

    def configured(self) -> bool:
        has_webhook = bool(self.webhook_url and self.webhook_url.get_secret_value())
        has_token = bool(self.token and self.token.get_secret_value() and self.channel)
        return has_webhook or has_token


class EmailChannelSettings(_ChannelBase):
    type: Literal["email"]
    host: str = ""
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = ""
    to: list[str] = Field(default_factory=list)
    timeout: Duration = timedelta(seconds=30)
    ca_file: Path | None = None  # extra CA certificates to trust (a private mail relay)

    def configured(self) -> bool:
        return bool(self.host and self.sender and self.to)


class WebhookChannelSettings(_ChannelBase):
    type: Literal["webhook"]
    url: SecretStr | None = None
    secret: SecretStr | None = None
    timeout: Duration = timedelta(seconds=15)

    def configured(self) -> bool:
        return bool(self.url and self.url.get_secret_value())


class AppriseChannelSettings(_ChannelBase):
    type: Literal["apprise"]
    urls: list[SecretStr] = Field(default_factory=list)

    def configured(self) -> bool:
        return any(u.get_secret_value() for u in self.urls)


ChannelSettings = Annotated[
    ConsoleChannelSettings
    | SlackChannelSettings
    | EmailChannelSettings
    | WebhookChannelSettings
    | AppriseChannelSettings,
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("console", "slack", "email", "webhook", "apprise")



def channel_fingerprint(settings: ChannelSettings) -> str:
    """A hash of a channel's settings, secrets included: it changes when the channel is fixed."""
    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, list):
            return [reveal(v) for v in value]
        if isinstance(value, BaseModel):
            return value.model_dump()
        return value

    values = {key: reveal(value) for key, value in settings.__dict__.items()}
    text = repr(sorted(values.items(), key=lambda kv: kv[0]))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
