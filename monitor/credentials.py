"""Secrets as files: systemd credentials (``LoadCredential=``) as a settings source.

systemd hands a service its secrets as files in ``$CREDENTIALS_DIRECTORY`` so that they
never appear in the unit, the environment or ``ps``; each file sets the configuration
key its name spells, exactly like the environment variable of that name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource

ENV_PREFIX = "NEWSMON_"


class CredentialsDirectorySource(PydanticBaseSettingsSource):
    """Secrets from files in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).

    A file named ``NEWSMON_CHANNELS__DESK_SLACK__TOKEN`` (or without the prefix,
    any case) sets that key, exactly like the environment variable of that name.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole folder at once

    def __call__(self) -> dict[str, Any]:
        folder = os.environ.get("CREDENTIALS_DIRECTORY")
        if not folder or not Path(folder).is_dir():
            return {}
        values: dict[str, Any] = {}
        for entry in sorted(Path(folder).iterdir()):
            if not entry.is_file():
                continue
            name = entry.name.lower()
            name = name.removeprefix(ENV_PREFIX.lower())
            parts = name.split("__")
            if parts[0] not in self.settings_cls.model_fields:
                continue
            target = values
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = entry.read_text(encoding="utf-8").strip()
        return values
