"""The email channel keeps its SMTP session open between the messages of a burst.

Against aiosmtpd on 127.0.0.1, which records each message with the client's address
and port (one per connection) and every QUIT.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from monitor.channels import email as email_channel
from monitor.channels.email import EmailChannel
from monitor.errors import ChannelError, ChannelFailure
from monitor.records import Digest
from tests.smtp_server import MailServerFactory
from tests.smtp_server import mail_server as mail_server
from tests.test_channel_email import make_alert, make_settings


def test_a_burst_of_alerts_and_a_digest_go_over_one_connection_which_close_quits(
    mail_server: MailServerFactory,
) -> None:
    server = mail_server()
    channel = EmailChannel("desk-email", make_settings(server.port))

    async def burst() -> None:
        for story in ("s1", "s2", "s3"):
            await channel.send(make_alert(story_id=story))
        await channel.send_digest(Digest("desk-email", (make_alert(story_id="s4"),),
                                         since=None, until=datetime.now(UTC)))
        await channel.close()

    asyncio.run(burst())

    assert len(server.received) == 4
    assert len({got.peer for got in server.received}) == 1
    assert server.recorder.quits == [server.received[0].peer]


def test_a_connection_idle_longer_than_the_keep_time_is_quit_and_the_next_alert_opens_another(
    mail_server: MailServerFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(email_channel, "_KEEP_IDLE", 0.2)
    server = mail_server()
    channel = EmailChannel("desk-email", make_settings(server.port))

    async def two_apart() -> None:
        await channel.send(make_alert(story_id="s1"))
        await asyncio.sleep(0.6)
        await channel.send(make_alert(story_id="s2"))
        await channel.close()

    asyncio.run(two_apart())

    first, second = (got.peer for got in server.received)
    assert first != second
    assert server.recorder.quits == [first, second]


def test_a_kept_connection_the_server_timed_out_is_replaced_and_the_alert_is_sent_once(
    mail_server: MailServerFactory,
) -> None:
    server = mail_server(timeout=0.3)  # aiosmtpd hangs up on a client idle this long
    channel = EmailChannel("desk-email", make_settings(server.port))

    async def across_the_servers_timeout() -> None:
        await channel.send(make_alert(story_id="s1"))
        await asyncio.sleep(0.8)
        await channel.send(make_alert(story_id="s2"))
        await channel.close()

    asyncio.run(across_the_servers_timeout())

    assert [got.message["Message-ID"] for got in server.received] == [
        f"<{make_alert(story_id=story).key}@example.org>" for story in ("s1", "s2")]
    assert len({got.peer for got in server.received}) == 2


def test_a_connection_carries_at_most_the_cap_of_messages(
    mail_server: MailServerFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(email_channel, "_MAX_PER_CONNECTION", 2)
    server = mail_server()
    channel = EmailChannel("desk-email", make_settings(server.port))

    async def five() -> None:
        for n in range(5):
            await channel.send(make_alert(story_id=f"s{n}"))
        await channel.close()

    asyncio.run(five())

    peers = [got.peer for got in server.received]
    assert len(peers) == 5
    assert peers[0] == peers[1] != peers[2] == peers[3] != peers[4]
    assert len(server.recorder.quits) == 3


def test_alerts_sent_side_by_side_each_get_a_connection_and_one_is_kept(
    mail_server: MailServerFactory,
) -> None:
    server = mail_server()
    channel = EmailChannel("desk-email", make_settings(server.port))

    async def side_by_side() -> None:
        await asyncio.gather(*(channel.send(make_alert(story_id=f"s{n}")) for n in range(3)))
        await channel.send(make_alert(story_id="after"))
        await channel.close()

    asyncio.run(side_by_side())

    peers = [got.peer for got in server.received]
    assert len(peers) == 4
    assert len(set(peers[:3])) == 3
    assert peers[3] in peers[:3]
    assert sorted(server.recorder.quits) == sorted(set(peers))


def test_a_kept_connection_is_closed_when_the_event_loop_ends_without_close(
    mail_server: MailServerFactory,
) -> None:
    server = mail_server()
    channel = EmailChannel("desk-email", make_settings(server.port))

    asyncio.run(channel.send(make_alert(story_id="s1")))
    asyncio.run(channel.send(make_alert(story_id="s2")))  # another loop: a new connection

    first, second = (got.peer for got in server.received)
    assert first != second
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and server.recorder.quits:
        time.sleep(0.05)  # no QUIT is owed: the connection is dropped, not reused
    assert server.recorder.quits == []


def test_a_send_whose_deadline_ends_while_the_kept_connection_is_checked_closes_it(
    mail_server: MailServerFactory,
) -> None:
    server = mail_server()
    server.recorder.rset_delay = 30  # the check outlasts the send's whole deadline
    channel = EmailChannel("desk-email", make_settings(server.port, timeout="1s"))

    async def second_send_times_out() -> ChannelError:
        await channel.send(make_alert(story_id="s1"))
        with pytest.raises(ChannelError) as caught:
            await channel.send(make_alert(story_id="s2"))
        for _ in range(40):  # the server notices the hang-up (not a timing assertion)
            if server.recorder.hung_up_in_rset:
                break
            await asyncio.sleep(0.05)
        return caught.value

    error = asyncio.run(second_send_times_out())

    assert error.kind == ChannelFailure.TIMEOUT
    assert server.recorder.hung_up_in_rset == [server.received[0].peer]
