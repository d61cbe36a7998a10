"""Configuration: the TOML file, defaults, durations, strictness, environment and secrets."""

from __future__ import annotations

import os
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.channel_settings import (
    ConsoleChannelSettings,
    EmailChannelSettings,
    SlackChannelSettings,
)
from monitor.config import Settings, as_mapping, load_settings
from monitor.errors import ConfigError
from monitor.secrets import channel_secrets
from monitor.severity import Severity

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NEWSMON_* variable or credentials folder of the machine leaks into these tests."""
    for key in list(os.environ):
        if key.upper().startswith("NEWSMON_") or key == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(key)


def write_config(folder: Path, text: str, name: str = "newsmon.toml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.path == path
    return caught.value.problems


# --- defaults ---------------------------------------------------------------------------


def test_an_empty_file_gives_the_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, ""))
    assert settings.storage.url == f"sqlite:///{tmp_path.resolve() / 'newsmon.db'}"
    assert settings.rules.paths == [tmp_path.resolve() / "rules"]
    assert settings.defaults.interval == timedelta(minutes=15)
    assert settings.defaults.channels == ["console"]
    assert settings.defaults.max_age == timedelta(days=7)
    assert settings.sources == []
    assert list(settings.channels) == ["console"]
    assert isinstance(settings.channels["console"], ConsoleChannelSettings)
    assert settings.fetch.max_items == 1000
    assert settings.delivery.interval == timedelta(seconds=5)


def test_a_source_inherits_the_default_interval_and_age_limit(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, """\
        [defaults]
        interval = "2h"
        max_age = "3d"

        [[sources]]
        name = "plain"
        url = "https://example.org/feed"

        [[sources]]
        name = "own"
        url = "https://example.org/other"
        interval = "30s"
        max_age = "off"
        """))
    plain, own = settings.sources
    assert settings.source_interval(plain) == timedelta(hours=2)
    assert settings.source_max_age(plain) == timedelta(days=3)
    assert settings.source_interval(own) == timedelta(seconds=30)
    assert settings.source_max_age(own) is None
    assert plain.enabled is True


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(minutes=90)),
    ],
)
def test_durations_are_a_number_and_a_unit(
    tmp_path: Path, text: str, expected: timedelta
) -> None:
    settings = load_settings(write_config(tmp_path, f'[defaults]\ninterval = "{text}"\n'))
    assert settings.defaults.interval == expected


@pytest.mark.parametrize("text", ['"15"', '"fortnight"', '"15 minutes"', '"0s"', '"-5m"',
                                  '"m"', '""', '"15x"'])
def test_a_malformed_duration_is_an_error_naming_its_key(tmp_path: Path, text: str) -> None:
    problems = problems_of(write_config(tmp_path, f"[defaults]\ninterval = {text}\n"))
    assert len(problems) == 1
    assert problems[0].startswith("defaults.interval: invalid duration")


@pytest.mark.parametrize("number", ["15", "1.5"])
def test_a_bare_number_is_not_a_duration(tmp_path: Path, number: str) -> None:
    problems = problems_of(write_config(tmp_path, f"[defaults]\ninterval = {number}\n"))
    assert problems == [
        f"defaults.interval: a duration needs a unit: write {number}s, {number}m, ...,"
        f" not {number}"
    ]


def test_off_switches_the_age_limit_off_but_is_not_an_interval(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, '[defaults]\nmax_age = "off"\n'))
    assert settings.defaults.max_age is None
    problems = problems_of(write_config(tmp_path, '[defaults]\ninterval = "off"\n'))
    assert problems[0].startswith("defaults.interval: invalid duration 'off'")


# --- strictness -------------------------------------------------------------------------


def test_unknown_keys_are_errors_with_their_key_paths(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
        [storag]
        url = "sqlite:///x.db"

        [[sources]]
        name = "a"
        url = "https://example.org/a"

        [[sources]]
        name = "b"
        url = "https://example.org/b"
        interval = 15
        colour = "blue"

        [channels.desk-slack]
        type = "slack"
        tokne = "xoxb-not-shown"
        """)
    assert problems_of(path) == [
        "sources[1].interval: a duration needs a unit: write 15s, 15m, ..., not 15",
        "sources[1].colour: unknown key",
        "channels.desk-slack.tokne: unknown key",
        "storag: unknown key",
    ]


def test_an_unknown_key_is_reported_without_its_value(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[channels.desk-slack]\ntype = "slack"\ntokne = "xoxb-777"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "xoxb-777" not in str(caught.value)
    assert caught.value.lines() == [f"{path}: channels.desk-slack.tokne: unknown key"]


def test_duplicate_source_names_are_an_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
        [[sources]]
        name = "wire"
        url = "https://example.org/a"

        [[sources]]
        name = "other"
        url = "https://example.org/b"

        [[sources]]
        name = "wire"
        url = "https://example.org/c"
        """)
    assert problems_of(path) == ["sources[2].name: duplicate source name 'wire'"]


def test_names_and_references_are_checked_beside_other_invalid_values(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
        [defaults]
        channels = ["console", "pager"]
        interval = 15

        [[sources]]
        name = "Seed Wire"
        url = "https://example.org/a"

        [[sources]]
        name = "wire"
        url = "https://example.org/b"

        [[sources]]
        name = "wire"
        url = "https://example.org/c"
        """)
    problems = problems_of(path)
    assert problems[0] == "defaults.interval: a duration needs a unit: write 15s, 15m, ..., not 15"
    assert problems[1].startswith("sources[0].name: ")
    assert problems[2:] == ["sources[2].name: duplicate source name 'wire'",
                            "defaults.channels[1]: unknown channel 'pager'"]


def test_default_channels_must_name_configured_channels(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
        [defaults]
        channels = ["console", "pager"]
        """)
    assert problems_of(path) == ["defaults.channels[1]: unknown channel 'pager'"]


def test_a_source_needs_a_valid_name_and_a_url(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
        [[sources]]
        name = "Seed Wire"
        url = "  "
        """)
    problems = problems_of(path)
    assert len(problems) == 2
    assert problems[0].startswith("sources[0].name: ")
    assert problems[1] == "sources[0].url: must not be empty"


def test_a_source_identity_is_guid_by_default_and_one_of_three(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
        [[sources]]
        name = "wire"
        url = "http://wire.example/feed"
        [[sources]]
        name = "live"
        url = "http://live.example/feed"
        identity = "link"
        [[sources]]
        name = "odd"
        url = "http://odd.example/feed"
        identity = "title"
        """)
    (problem,) = problems_of(path)
    assert problem.startswith("sources[2].identity: ")
    assert "'guid', 'link' or 'content'" in problem
    path.write_text(path.read_text().replace('identity = "title"', 'identity = "content"'))
    assert [s.identity for s in load_settings(path).sources] == ["guid", "link", "content"]


def test_an_unknown_channel_type_names_the_channel(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[channels.pager]\ntype = "pagerduty"\n')
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith("channels.pager: ")
    assert "'pagerduty'" in problems[0]


def test_a_channel_name_is_lowercase(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
        [channels.console]
        type = "console"
        [channels.Desk]
        type = "console"
        """)
    assert problems_of(path) == [
        "channels.Desk: a channel name is lowercase letters, digits, - and _"
    ]


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, """\
        [storage]
        url = "sqlite:///x.db"
        this line is wrong
        """)
    (problem,) = problems_of(path)
    assert problem.startswith("invalid TOML: ")
    assert "line 3" in problem


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "absent.toml") == ["configuration file not found"]


# --- the environment --------------------------------------------------------------------


SLACK_FILE = """\
[channels.console]
type = "console"

[channels.desk-slack]
type = "slack"
webhook_url = ""
min_severity = "high"
"""


def test_an_environment_variable_overrides_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, '[storage]\nurl = "sqlite:///file.db"\n')
    monkeypatch.setenv("NEWSMON_STORAGE__URL", "postgresql://newsmon@db.example/newsmon")
    assert load_settings(path).storage.url == "postgresql://newsmon@db.example/newsmon"


def test_an_environment_variable_merges_into_a_hyphenated_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, SLACK_FILE)
    monkeypatch.setenv("NEWSMON_CHANNELS__DESK_SLACK__WEBHOOK_URL",
                       "https://hooks.slack.example/services/T0/B0/env")
    settings = load_settings(path)
    assert sorted(settings.channels) == ["console", "desk-slack"]
    slack = settings.channels["desk-slack"]
    assert isinstance(slack, SlackChannelSettings)
    assert slack.webhook_url is not None
    assert slack.webhook_url.get_secret_value() == "https://hooks.slack.example/services/T0/B0/env"
    assert slack.min_severity is Severity.HIGH  # kept from the file
    assert slack.configured()


def test_a_list_can_come_from_the_environment_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, SLACK_FILE)
    monkeypatch.setenv("NEWSMON_DEFAULTS__CHANNELS", '["console", "desk-slack"]')
    assert load_settings(path).defaults.channels == ["console", "desk-slack"]


def test_an_unknown_environment_key_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSMON_STORAGE__URLL", "sqlite:///typo.db")
    assert problems_of(write_config(tmp_path, "")) == ["storage.urll: unknown key"]


def test_the_config_path_variable_is_not_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSMON_CONFIG", str(tmp_path / "newsmon.toml"))
    assert load_settings(write_config(tmp_path, "")).defaults.channels == ["console"]


# --- credentials ------------------------------------------------------------------------


def test_secrets_come_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, SLACK_FILE + """
[channels.desk-email]
type = "email"
host = "smtp.example.org"
sender = "newsmon@example.org"
to = ["desk@example.org"]
""")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "NEWSMON_CHANNELS__DESK_EMAIL__PASSWORD").write_text("smtp-pass\n")
    (credentials / "channels__desk_slack__token").write_text("xoxb-from-credential")
    (credentials / "channels__desk_slack__channel").write_text("#news-alerts")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings(path)
    email = settings.channels["desk-email"]
    slack = settings.channels["desk-slack"]
    assert isinstance(email, EmailChannelSettings)
    assert isinstance(slack, SlackChannelSettings)
    assert email.password is not None
    assert email.password.get_secret_value() == "smtp-pass"
    assert email.host == "smtp.example.org"  # kept from the file
    assert slack.token is not None
    assert slack.token.get_secret_value() == "xoxb-from-credential"
    assert slack.channel == "#news-alerts"
    assert slack.min_severity is Severity.HIGH
    assert sorted(channel_secrets(settings)) == ["smtp-pass", "xoxb-from-credential"]


def test_the_environment_beats_a_credential_file_which_beats_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, SLACK_FILE.replace('webhook_url = ""',
                                                     'webhook_url = "https://file"'))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "NEWSMON_CHANNELS__DESK_SLACK__WEBHOOK_URL").write_text("https://credential")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))

    def webhook() -> str:
        slack = load_settings(path).channels["desk-slack"]
        assert isinstance(slack, SlackChannelSettings)
        assert slack.webhook_url is not None
        return slack.webhook_url.get_secret_value()

    assert webhook() == "https://credential"
    monkeypatch.setenv("NEWSMON_CHANNELS__DESK_SLACK__WEBHOOK_URL", "https://environment")
    assert webhook() == "https://environment"


def test_a_missing_credentials_directory_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "nowhere"))
    assert load_settings(write_config(tmp_path, SLACK_FILE)).channels["desk-slack"].type == "slack"


# --- secrets never shown ----------------------------------------------------------------


def test_secrets_never_show_in_the_settings_repr_str_or_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, SLACK_FILE + """
[channels.desk-email]
type = "email"
password = "hunter2-from-file"
""")
    monkeypatch.setenv("NEWSMON_CHANNELS__DESK_SLACK__TOKEN", "xoxb-from-environment")
    settings = load_settings(path)
    shown = [repr(settings), str(settings), repr(settings.channels), str(as_mapping(settings))]
    shown += [repr(c) for c in settings.channels.values()]
    for text in shown:
        assert "hunter2-from-file" not in text
        assert "xoxb-from-environment" not in text
    assert "**********" in repr(settings)
    assert sorted(channel_secrets(settings)) == ["hunter2-from-file", "xoxb-from-environment"]


# --- relative paths ---------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "newsmon"
    path = write_config(folder, """\
        [storage]
        url = "sqlite:///state/newsmon.db"

        [rules]
        paths = ["rules", "../shared-rules", "/srv/rules"]

        [[sources]]
        name = "local"
        url = "seeds/feeds/wire.xml"

        [[sources]]
        name = "web"
        url = "https://example.org/feed.xml"

        [[sources]]
        name = "file-url"
        url = "file:///var/feeds/x.xml"

        [[sources]]
        name = "absolute"
        url = "/var/feeds/y.xml"
        """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(path)
    base = folder.resolve()
    assert settings.storage.url == f"sqlite:///{base / 'state' / 'newsmon.db'}"
    assert settings.rules.paths == [base / "rules", base / "../shared-rules", Path("/srv/rules")]
    assert [s.url for s in settings.sources] == [
        str(base / "seeds" / "feeds" / "wire.xml"),
        "https://example.org/feed.xml",
        "file:///var/feeds/x.xml",
        "/var/feeds/y.xml",
    ]


@pytest.mark.parametrize(
    "url",
    ["sqlite:////var/lib/newsmon/newsmon.db", "sqlite:///:memory:",
     "postgresql://newsmon@db/newsmon"],
)
def test_absolute_and_non_file_storage_urls_are_kept(tmp_path: Path, url: str) -> None:
    settings = load_settings(write_config(tmp_path, f'[storage]\nurl = "{url}"\n'))
    assert settings.storage.url == url


def test_a_relative_storage_path_from_the_environment_also_resolves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSMON_STORAGE__URL", "sqlite:///env.db")
    settings = load_settings(write_config(tmp_path, ""))
    assert settings.storage.url == f"sqlite:///{tmp_path.resolve() / 'env.db'}"


# --- the shipped example ----------------------------------------------------------------


def test_the_example_configuration_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(ROOT / "config.example.toml")
    assert isinstance(settings, Settings)
    assert [s.name for s in settings.sources] == ["seed-wire", "baltic-observer"]
    for source in settings.sources:
        assert Path(source.url).is_file()
        assert settings.source_interval(source) == timedelta(minutes=1)
        assert settings.source_max_age(source) is None
    assert settings.rules.paths == [ROOT / "rules"]
    assert settings.storage.url == f"sqlite:///{ROOT / 'newsmon.db'}"
    assert sorted(settings.channels) == ["console", "desk-email", "desk-slack"]
    slack = settings.channels["desk-slack"]
    email = settings.channels["desk-email"]
    assert isinstance(slack, SlackChannelSettings)
    assert isinstance(email, EmailChannelSettings)
    assert not slack.configured()
    assert not email.configured()
    assert settings.defaults.channels == ["console"]


def test_the_console_channel_exists_even_when_the_file_defines_only_others(tmp_path: Path) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text('[channels.desk]\ntype = "slack"\n')
    settings = load_settings(config)
    assert settings.defaults.channels == ["console"]
    assert settings.channels["console"].type == "console"
