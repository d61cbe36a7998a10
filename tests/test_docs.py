"""Docs that cannot drift: every setting, command and rule key is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from monitor.channel_settings import (
    ConsoleChannelSettings,
    EmailChannelSettings,
    SlackChannelSettings,
)
from monitor.cli import build_parser
from monitor.config import Settings, SourceSettings, load_settings
from monitor.rules.load import RULE_KEYS
from tests.conftest import REPO

DOCS = REPO / "docs"


def documented_keys(path: Path) -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", path.read_text(), re.MULTILINE))


def section_models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [SourceSettings, ConsoleChannelSettings,
                                     SlackChannelSettings, EmailChannelSettings]
    for field in Settings.model_fields.values():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            models.append(annotation)
    return models


@pytest.mark.parametrize("model", section_models(), ids=lambda m: m.__name__)
def test_every_setting_is_in_the_configuration_docs(model: type[BaseModel]) -> None:
    documented = documented_keys(DOCS / "configuration.md") | {"type", "min_severity"}
    assert set(model.model_fields) <= documented


def test_every_section_is_in_the_configuration_docs() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"[{name}]" in text or f"[[{name}]]" in text or f"[{name}." in text, name


def test_the_example_configuration_loads_and_covers_every_section() -> None:
    settings = load_settings(REPO / "config.example.toml")
    assert [s.name for s in settings.sources] == ["seed-wire", "baltic-observer"]
    text = (REPO / "config.example.toml").read_text()
    for section in ("[storage]", "[rules]", "[defaults]", "[[sources]]", "[channels.console]"):
        assert section in text
    assert {c.type for c in settings.channels.values()} == {"console", "slack", "email"}


def test_every_rule_key_is_in_the_rules_docs() -> None:
    assert set(RULE_KEYS) <= documented_keys(DOCS / "rules.md")


def test_every_command_is_documented() -> None:
    text = (REPO / "README.md").read_text() + "".join(p.read_text() for p in DOCS.glob("*.md"))
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in commands.items():
        nested = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        names = [f"{name} {n}" for n in nested[0].choices] if nested else [name]
        for full in names:
            assert f"newsmon {full}" in text, full
