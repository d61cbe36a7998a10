"""The unit file an operator installs: a notify service with a watchdog, reload, secrets as
credentials, and hardening that `systemd-analyze security` scores 2.0 or lower."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

UNIT = REPO / "systemd" / "newsmon.service"
MAX_EXPOSURE = 2.0


def service_section() -> dict[str, list[str]]:
    """``[Service]`` settings, each with every value it is given (keys repeat in units)."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_unit_is_a_notify_service_with_a_watchdog_reload_and_its_own_directories(
) -> None:
    service = service_section()
    assert service["Type"] == ["notify"]
    watchdog = service["WatchdogSec"][0]
    assert re.fullmatch(r"\d+s", watchdog)
    assert 10 <= int(watchdog[:-1]) <= 60
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["Restart"] == ["on-failure"]
    assert service["DynamicUser"] == ["yes"]
    assert service["StateDirectory"] == ["newsmon"]
    assert service["ConfigurationDirectory"] == ["newsmon"]
    assert all(c.startswith("NEWSMON_") for c in service["LoadCredential"])
    # SIGTERM: newsmon stops within 10 s; systemd must wait longer before SIGKILL.
    assert int(service["TimeoutStopSec"][0].removesuffix("s")) > 10


def test_the_unit_parses_as_an_ini_file_with_its_three_sections() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    assert parser.sections() == ["Unit", "Service", "Install"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_systemd_analyze_scores_the_hardening_at_two_or_lower() -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for newsmon\.service: (\d+(?:\.\d+)?) ",
                      result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout
