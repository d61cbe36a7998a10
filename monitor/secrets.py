"""The secrets in a configuration, in every form they may be written in, so that logs,
``status`` and errors can redact them.

A secret URL (a Slack or webhook URL) also gives its path and its query: the secret
is the path, and a library may quote the path without the host.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import SecretStr

from monitor.config import Settings

_MIN_PART = 8  # a shorter path or query is not a secret (and would redact common text)


def channel_secrets(settings: Settings) -> list[str]:
    """Every secret value of every channel, in all its forms."""
    secrets: list[str] = []
    for channel in settings.channels.values():
        for value in channel.__dict__.values():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, SecretStr) and item.get_secret_value():
                    secrets.extend(secret_forms(item.get_secret_value()))
    return secrets


def secret_forms(secret: str) -> list[str]:
    """The secret itself and, for a URL, its path and its query."""
    forms = [secret]
    if re.match(r"^[a-z][a-z0-9+.-]*://", secret, re.IGNORECASE):
        try:
            parts = urlsplit(secret)
        except ValueError:
            return forms
        forms.extend(part for part in (parts.path, parts.query)
                     if len(part.strip("/")) >= _MIN_PART)
    return forms
