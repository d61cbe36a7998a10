"""Log lines: readable on a terminal, JSON with fields when asked or under journald, and
never a secret, whatever carries it (message, field, traceback)."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.logs import about, setup_logging

SECRET = "xoxb-SECRET-token-4242"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_text_lines_name_the_level_and_redact_secrets() -> None:
    out = io.StringIO()
    setup_logging("INFO", [SECRET], "text", stream=out)
    logging.getLogger("newsmon.test").warning("token %s refused", SECRET)
    (line,) = lines(out)
    assert line.endswith("WARNING token *** refused")


def test_json_lines_carry_source_rule_and_channel_as_fields() -> None:
    out = io.StringIO()
    setup_logging("INFO", [], "json", stream=out)
    logging.getLogger("newsmon.deliver").info(
        "sent alert 3 for rule r1 to channel desk", extra=about(rule="r1", channel="desk"))
    logging.getLogger("newsmon.poll").error("source wire: HTTP 500",
                                            extra=about(source="wire"))
    sent, failed = (json.loads(line) for line in lines(out))
    assert (sent["rule"], sent["channel"], sent.get("source")) == ("r1", "desk", None)
    assert (sent["level"], sent["logger"]) == ("info", "newsmon.deliver")
    assert (failed["level"], failed["source"], failed["message"]) == (
        "error", "wire", "source wire: HTTP 500")


def test_a_secret_in_a_traceback_or_a_field_is_redacted_in_json() -> None:
    out = io.StringIO()
    setup_logging("INFO", [SECRET], "json", stream=out)
    try:
        raise RuntimeError(f"refused {SECRET}")
    except RuntimeError:
        logging.getLogger("newsmon.test").exception("send failed",
                                                    extra=about(channel=f"c-{SECRET}"))
    assert SECRET not in out.getvalue()
    entry = json.loads(out.getvalue())
    assert "RuntimeError: refused ***" in entry["error"]
    assert entry["channel"] == "c-***"


def test_under_journald_auto_writes_json_with_a_syslog_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "journal").open("w+") as journal:
        status = os.fstat(journal.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
        setup_logging("INFO", [], "auto", stream=journal)
        logging.getLogger("newsmon.poll").error("source wire: down", extra=about(source="wire"))
        journal.flush()
        journal.seek(0)
        line = journal.read().strip()
    assert line.startswith("<3>{")
    assert json.loads(line[3:])["source"] == "wire"


def test_auto_is_text_when_the_journal_stream_is_another_file(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    out = io.StringIO()  # no file descriptor: never the journal
    setup_logging("INFO", [], "auto", stream=out)
    logging.getLogger("newsmon.test").info("hello")
    assert lines(out)[0].endswith("INFO    hello")
