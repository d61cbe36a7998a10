"""Secrets never reach an operator's screen: not in the daemon's logs (JSON, at DEBUG),
not in `newsmon status`, not in `newsmon channels test` errors — even with every channel
failing. A real daemon process; Slack, SMTP and webhook receivers on 127.0.0.1; the
commands run in-process on the daemon's database."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from monitor.cli import main
from tests.conftest import FeedServer, Route
from tests.daemon_process import DaemonProcess
from tests.service_fixtures import rss, rule
from tests.slack_server import WEBHOOK_PATH, SlackServer
from tests.slack_server import slack_server_fixture as slack_server_fixture
from tests.smtp_server import MailServerFactory
from tests.smtp_server import mail_server as mail_server

pytestmark = pytest.mark.slow

SLACK_TOKEN = "xoxb-4242-9191-SECRETslackTOKENvalue"  # not the fake Slack's: invalid_auth
SMTP_PASSWORD = "SECRET-smtp-hunter2-password"
HMAC_KEY = "SECRET-hmac-signing-key-8a7f"
HOOK_KEY = "SECRETwebhookQUERYkey123"


def refuse_everyone(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                    auth_data: object) -> AuthResult:
    return AuthResult(success=False, handled=False)  # aiosmtpd answers 535


def test_no_secret_appears_in_logs_status_or_errors_when_every_channel_fails(
    tmp_path: Path, feed_server: FeedServer, slack_server: SlackServer,
    mail_server: MailServerFactory, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = feed_server.serve("/wire.xml", rss("Scholz phones Putin", "Scholz visits Warsaw"))
    hook_url = feed_server.url(f"/receiver?key={HOOK_KEY}")
    feed_server.routes[f"/receiver?key={HOOK_KEY}"] = Route(
        status=500, body=f"cannot handle {hook_url}".encode(), content_type="text/plain")
    smtp = mail_server(authenticator=refuse_everyone, auth_required=False,
                       auth_require_tls=False)
    slack_hook = feed_server.url(WEBHOOK_PATH)  # a Slack webhook that fails with 500
    feed_server.routes[WEBHOOK_PATH] = Route(status=500, body=f"error at {slack_hook}".encode(),
                                             content_type="text/plain")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "scholz.yaml").write_text(rule("scholz", "Scholz"))
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "NEWSMON_CHANNELS__HOOK_SLACK__WEBHOOK_URL").write_text(slack_hook)
    (credentials / "channels__desk-email__password").write_text(SMTP_PASSWORD)
    config = tmp_path / "newsmon.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///state.db"
[rules]
paths = ["rules"]
[defaults]
max_age = "off"
channels = ["api-slack", "hook-slack", "desk-email", "receiver"]
[delivery]
interval = "1s"
[logging]
format = "json"
[[sources]]
name = "wire"
url = "{feed}"
interval = "1s"
[channels.api-slack]
type = "slack"
channel = "#news"
api_url = "{slack_server.api_url}"
[channels.hook-slack]
type = "slack"
[channels.desk-email]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
username = "newsmon"
sender = "newsmon@example.org"
to = ["desk@example.org"]
[channels.receiver]
type = "webhook"
url = "{hook_url}"
secret = "{HMAC_KEY}"
""")
    env = {"NEWSMON_CHANNELS__API_SLACK__TOKEN": SLACK_TOKEN,
           "CREDENTIALS_DIRECTORY": str(credentials)}
    daemon = DaemonProcess("--config", str(config), "--log-level", "DEBUG", env=env)
    request.addfinalizer(daemon.kill)
    daemon.wait_for("channel api-slack failed permanently", "stderr")
    daemon.wait_for("channel desk-email failed permanently", "stderr")
    daemon.wait_for("to channel hook-slack failed", "stderr")
    daemon.wait_for("to channel receiver failed", "stderr")
    code, _ = daemon.stop(signal.SIGTERM)
    assert code == 0
    outputs = {"run stdout": "".join(daemon.stdout), "run stderr": "".join(daemon.stderr)}
    for line in daemon.stderr:  # JSON lines, each channel's lines carry its name as a field
        entry = json.loads(line)
        if entry["message"].startswith("channel api-slack failed"):
            assert entry["channel"] == "api-slack"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for command in (["status"], *(["channels", "test", name] for name in
                                  ("api-slack", "hook-slack", "desk-email", "receiver"))):
        main([*command, "--config", str(config)])
        captured = capsys.readouterr()
        outputs[" ".join(command)] = captured.out + captured.err
    outputs["command logs"] = caplog.text
    assert "failed" in outputs["channels test desk-email"]
    secrets = [SLACK_TOKEN, SMTP_PASSWORD, HMAC_KEY, HOOK_KEY, slack_hook, WEBHOOK_PATH,
               WEBHOOK_PATH.rsplit("/", 1)[1]]
    leaks = {(where, secret) for where, text in outputs.items() for secret in secrets
             if secret in text}
    assert leaks == set()
