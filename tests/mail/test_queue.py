"""The outbound queue against a scripted MX on loopback, on both storage
pairs: delivery, retries, bounces, delay notices and connection reuse.

Time is a ManualClock: a test moves it past a retry's wait instead of
sleeping. Every remote domain reaches the scripted MX through mx_override.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email import message_from_bytes

import pytest

from nubo.accounts import ManualClock
from nubo.mail.queue import InvalidRecipient, NoSuchQueueMessage, QueueError
from tests.mail.mailstore_rig import MailRig
from tests.mail.queue_rig import (
    inbox,
    make_outbound,
    message,
    queue_rows,
    refcount,
    report_parts,
    untraced,
)
from tests.mail.scripted_mx import HANGUP, scripted_mx, self_signed


async def test_remote_delivery_once_then_gone(mail: MailRig) -> None:
    await mail.user("ann")
    raw = message(1)
    with scripted_mx() as mx:
        outbound = make_outbound(mail, mx)
        queue_id = await outbound.enqueue(
            "ann@example.org", ["bob@remote.test", "carol@remote.test"], raw
        )
        blob_id = (await mail.blobs.put_bytes(raw))[0]
        assert await refcount(mail, blob_id) == 1

        assert await outbound.run_once() == 2

    assert len(mx.delivered) == 1
    sent = mx.delivered[0]
    assert sent.mail_from == "ann@example.org"
    assert sent.rcpt_tos == ("bob@remote.test", "carol@remote.test")
    assert sent.data == raw
    assert f"SIZE={len(raw)}" in sent.mail_options
    assert queue_id > 0
    assert await outbound.list() == []
    assert await queue_rows(mail) == (0, 0)
    assert await refcount(mail, blob_id) == 0


async def test_451_then_250_delivers_on_the_retry_exactly_once(mail: MailRig) -> None:
    await mail.user("ann")
    clock = ManualClock()
    with scripted_mx(data=["451 4.3.0 try again later"]) as mx:
        outbound = make_outbound(mail, mx, clock)
        queue_id = await outbound.enqueue(
            "ann@example.org", ["bob@remote.test"], message(1)
        )

        assert await outbound.run_once() == 1
        [entry] = await outbound.list()
        assert (entry.id, entry.attempts, entry.recipients) == (queue_id, 1, 1)
        assert entry.last_reply == "451 4.3.0 try again later"
        assert (entry.next_attempt_at - clock.now()).total_seconds() == 60

        assert await outbound.run_once() == 0  # not due yet
        clock.advance(60)
        assert await outbound.run_once() == 1
        assert await outbound.run_once() == 0

    assert len(mx.delivered) == 1
    assert list(mx.message_ids().values()) == [1]
    assert await outbound.list() == []
    assert await queue_rows(mail) == (0, 0)


async def test_backoff_doubles_up_to_the_maximum(mail: MailRig) -> None:
    await mail.user("ann")
    clock = ManualClock()
    waits = []
    with scripted_mx(data=["451 4.3.0 later"] * 6) as mx:
        outbound = make_outbound(mail, mx, clock)
        await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
        for _ in range(6):
            assert await outbound.run_once() == 1
            [entry] = await outbound.list()
            wait = (entry.next_attempt_at - clock.now()).total_seconds()
            waits.append(wait)
            clock.advance(wait)
    assert waits == [60, 120, 240, 480, 600, 600]


async def test_550_bounces_into_the_local_senders_inbox(mail: MailRig) -> None:
    ann = await mail.user("ann")
    raw = message(7)
    with scripted_mx(rcpt={"bob@remote.test": ["550 5.1.1 no such user"]}) as mx:
        outbound = make_outbound(mail, mx)
        await outbound.enqueue(
            "ann@example.org", ["bob@remote.test", "eve@remote.test"], raw
        )
        # The bounce is queued with the outcome and delivered in the same pass.
        assert await outbound.run_once() == 3

    assert [d.rcpt_tos for d in mx.delivered] == [("eve@remote.test",)]
    [report] = await inbox(mail, ann)
    # A report's envelope sender is null (RFC 3464 §2), and so its path.
    assert report.startswith(b"Return-Path: <>\r\nReceived: from queue\r\n")
    parsed, recipients, returned = report_parts(report)
    assert parsed["From"] == "Mail Delivery System <MAILER-DAEMON@mail.example.org>"
    assert parsed["To"] == "<ann@example.org>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert recipients == [
        {
            "Final-Recipient": "rfc822; bob@remote.test",
            "Action": "failed",
            "Status": "5.1.1",
            "Remote-MTA": "dns; 127.0.0.1",
            "Diagnostic-Code": "smtp; 550 5.1.1 no such user",
            "Last-Attempt-Date": recipients[0]["Last-Attempt-Date"],
        }
    ]
    assert "Subject: note 7" in returned
    assert "Hello 7" not in report.decode()  # headers only, never the body
    assert await queue_rows(mail) == (0, 0)


async def test_a_bounce_is_never_bounced(
    mail: MailRig, caplog: pytest.LogCaptureFixture
) -> None:
    ann = await mail.user("ann")
    caplog.set_level(logging.INFO, logger="nubo.mail.queue")
    with scripted_mx(data=["554 5.7.1 rejected"]) as mx:
        outbound = make_outbound(mail, mx)
        await outbound.enqueue("", ["bob@remote.test"], message(1))
        assert await outbound.run_once() == 1

    assert mx.delivered == []
    assert await inbox(mail, ann) == []
    assert await queue_rows(mail) == (0, 0)
    assert "report about a report dropped" in caplog.text


async def test_bounce_to_a_remote_sender_goes_out_with_an_empty_sender(
    mail: MailRig,
) -> None:
    with scripted_mx(rcpt={"bob@remote.test": ["550 5.1.1 unknown"]}) as mx:
        outbound = make_outbound(mail, mx)
        await outbound.enqueue("carol@elsewhere.test", ["bob@remote.test"], message(1))
        assert await outbound.run_once() == 2

    [report] = mx.delivered
    assert report.mail_from == "<>"  # aiosmtpd keeps the null path as written
    assert report.rcpt_tos == ("carol@elsewhere.test",)
    _parsed, recipients, _header = report_parts(report.data)
    assert recipients[0]["Status"] == "5.1.1"


async def test_unknown_local_recipient_bounces_and_local_ones_get_it(
    mail: MailRig,
) -> None:
    ann = await mail.user("ann")
    bob = await mail.user("bob")
    raw = message(3, to="bob@example.org")
    outbound = make_outbound(mail)
    await outbound.enqueue(
        "ann@example.org", ["bob@example.org", "nobody@example.org"], raw
    )
    assert await outbound.run_once() == 3

    assert [untraced(x) for x in await inbox(mail, bob)] == [raw]
    [report] = await inbox(mail, ann)
    _parsed, recipients, _header = report_parts(report)
    assert recipients[0]["Final-Recipient"] == "rfc822; nobody@example.org"
    assert recipients[0]["Status"] == "5.1.1"
    assert "Remote-MTA" not in recipients[0]
    assert await queue_rows(mail) == (0, 0)


async def test_local_copy_gets_return_path_and_received(mail: MailRig) -> None:
    bob = await mail.user("bob")
    clock = ManualClock(datetime(2026, 3, 2, 9, 30, 5, tzinfo=UTC))
    outbound = make_outbound(mail, clock=clock)
    raw = message(2, to="bob@example.org")
    queue_id = await outbound.enqueue("ann@example.org", ["bob@example.org"], raw)
    assert await outbound.run_once() == 1

    # RFC 5321 §4.4: final delivery records the envelope sender and the hop.
    assert await inbox(mail, bob) == [
        b"Return-Path: <ann@example.org>\r\n"
        b"Received: from queue\r\n"
        b"\tby mail.example.org id q%d;\r\n"
        b"\tMon, 02 Mar 2026 09:30:05 +0000\r\n" % queue_id + raw
    ]


async def test_alias_reaching_one_user_twice_delivers_once(mail: MailRig) -> None:
    bob = await mail.user("bob")
    await mail.accounts.add_alias("team@example.org", ["bob@example.org"])
    outbound = make_outbound(mail)
    raw = message(4, to="team@example.org")
    await outbound.enqueue(
        "x@elsewhere.test", ["team@example.org", "bob+news@example.org"], raw
    )
    assert await outbound.run_once() == 2
    assert [untraced(x) for x in await inbox(mail, bob)] == [raw]


async def test_alias_with_one_user_over_quota_queues_that_user_alone(
    mail: MailRig,
) -> None:
    bob = await mail.user("bob")
    full = await mail.user("full", quota=10)
    ann = await mail.user("ann")
    await mail.accounts.add_alias(
        "team@example.org", ["bob@example.org", "full@example.org"]
    )
    outbound = make_outbound(mail)
    raw = message(5, to="team@example.org")
    await outbound.enqueue("ann@example.org", ["team@example.org"], raw)
    await outbound.run_once()

    assert [untraced(x) for x in await inbox(mail, bob)] == [raw]
    assert await inbox(mail, full) == []
    # Over quota is permanent (552 5.2.2): the user's own row bounced.
    [report] = await inbox(mail, ann)
    _parsed, recipients, _header = report_parts(report)
    assert recipients[0]["Final-Recipient"] == "rfc822; full@example.org"
    assert recipients[0]["Status"] == "5.2.2"
    assert await queue_rows(mail) == (0, 0)


async def test_expiry_bounces_after_one_delay_notice(mail: MailRig) -> None:
    ann = await mail.user("ann")
    clock = ManualClock()
    with scripted_mx(data=["451 4.3.2 system not accepting"] * 100) as mx:
        outbound = make_outbound(mail, mx, clock)
        await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(2))
        passes = 0
        while await outbound.list():
            await outbound.run_once()
            entries = await outbound.list()
            if entries:
                clock.current = max(clock.current, entries[0].next_attempt_at)
            passes += 1
            assert passes < 50

    reports = [report_parts(raw) for raw in await inbox(mail, ann)]
    actions = [recipients[0]["Action"] for _p, recipients, _h in reports]
    assert actions == ["delayed", "failed"]
    delayed, failed = reports[0][1][0], reports[1][1][0]
    assert delayed["Status"] == "4.3.2"
    assert "Will-Retry-Until" in delayed
    assert reports[0][0]["Subject"] == "Delayed Mail (still being retried)"
    # Expiry keeps the last temporary status, with the action "failed".
    assert failed["Status"] == "4.3.2"
    assert failed["Diagnostic-Code"] == "smtp; 451 4.3.2 system not accepting"
    assert mx.delivered == []
    assert await queue_rows(mail) == (0, 0)


async def test_five_messages_to_one_domain_share_one_connection(mail: MailRig) -> None:
    with scripted_mx() as mx:
        outbound = make_outbound(mail, mx)
        for n in range(5):
            await outbound.enqueue("ann@example.org", [f"u{n}@remote.test"], message(n))
        assert await outbound.run_once() == 5
    assert len(mx.delivered) == 5
    assert mx.connections == 1


async def test_hang_up_is_temporary_and_the_retry_delivers(mail: MailRig) -> None:
    clock = ManualClock()
    with scripted_mx(data=[HANGUP]) as mx:
        outbound = make_outbound(mail, mx, clock)
        await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
        await outbound.run_once()
        [entry] = await outbound.list()
        assert entry.last_reply is not None and entry.last_reply.startswith("4.4.2")
        clock.advance(60)
        await outbound.run_once()
    assert len(mx.delivered) == 1
    assert await outbound.list() == []


async def test_connection_refused_is_temporary(mail: MailRig) -> None:
    with scripted_mx() as mx:
        port = mx.port
    outbound = make_outbound(mail, mx_override=f"*=127.0.0.1:{port}")
    await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
    assert await outbound.run_once() == 1
    [entry] = await outbound.list()
    assert entry.last_reply is not None and entry.last_reply.startswith("4.4.1")


async def test_starttls_is_used_when_offered(
    mail: MailRig, tmp_path_factory: pytest.TempPathFactory
) -> None:
    files = self_signed(tmp_path_factory.mktemp("mx-tls"))
    with scripted_mx(tls_files=files) as mx:
        outbound = make_outbound(mail, mx)
        await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
        await outbound.run_once()
    [sent] = mx.delivered
    assert sent.tls


async def test_a_failed_tls_handshake_falls_back_to_plaintext(
    mail: MailRig, tmp_path_factory: pytest.TempPathFactory
) -> None:
    files = self_signed(tmp_path_factory.mktemp("mx-bad-tls"))
    with scripted_mx(tls_files=files, tls_broken=True) as mx:
        outbound = make_outbound(mail, mx)
        await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
        await outbound.run_once()
    [sent] = mx.delivered
    assert not sent.tls
    assert mx.connections == 2  # the failed handshake, then plaintext


async def test_size_over_the_mx_limit_bounces_without_sending(mail: MailRig) -> None:
    ann = await mail.user("ann")
    with scripted_mx(size_limit=100) as mx:
        outbound = make_outbound(mail, mx)
        await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
        await outbound.run_once()
    assert mx.delivered == []
    [report] = await inbox(mail, ann)
    assert report_parts(report)[1][0]["Status"] == "5.3.4"


async def test_utf8_address_needs_smtputf8(mail: MailRig) -> None:
    ann = await mail.user("ann")
    with scripted_mx() as mx:
        outbound = make_outbound(mail, mx)
        await outbound.enqueue("ann@example.org", ["jürgen@remote.test"], message(1))
        await outbound.run_once()
    [sent] = mx.delivered
    assert sent.rcpt_tos == ("jürgen@remote.test",)
    assert "SMTPUTF8" in sent.mail_options

    with scripted_mx(smtputf8=False) as mx:
        outbound = make_outbound(mail, mx)
        await outbound.enqueue("ann@example.org", ["jürgen@remote.test"], message(2))
        await outbound.run_once()
    assert mx.delivered == []
    [report] = await inbox(mail, ann)
    parsed = message_from_bytes(report)
    status = parsed.get_payload()[1]  # type: ignore[index]
    assert status.get_content_type() == "message/global-delivery-status"
    assert b"Status: 5.6.7" in report
    assert "utf-8; jürgen@remote.test".encode() in report


async def test_relay_host_with_auth_over_starttls(
    mail: MailRig, tmp_path_factory: pytest.TempPathFactory
) -> None:
    files = self_signed(tmp_path_factory.mktemp("relay-tls"))
    with scripted_mx(tls_files=files, auth=("nubo", "s3cret")) as relay:
        outbound = make_outbound(
            mail,
            relay_host=relay.address,
            relay_username="nubo",
            relay_password="s3cret",
        )
        await outbound.enqueue(
            "ann@example.org", ["a@one.test", "b@two.test"], message(1)
        )
        await outbound.run_once()
    assert sorted(d.rcpt_tos for d in relay.delivered) == [
        ("a@one.test",),
        ("b@two.test",),
    ]
    assert all(d.tls for d in relay.delivered)
    assert relay.logins >= 1


async def test_relay_credentials_never_go_in_clear(mail: MailRig) -> None:
    with scripted_mx() as relay:
        outbound = make_outbound(
            mail,
            relay_host=relay.address,
            relay_username="nubo",
            relay_password="s3cret",
        )
        await outbound.enqueue("ann@example.org", ["a@one.test"], message(1))
        await outbound.run_once()
    assert relay.delivered == []
    [entry] = await outbound.list()
    assert entry.last_reply is not None and "no TLS" in entry.last_reply


async def test_enqueue_refuses_bad_recipients(mail: MailRig) -> None:
    outbound = make_outbound(mail)
    with pytest.raises(InvalidRecipient):
        await outbound.enqueue("ann@example.org", ["no-domain"], message(1))
    with pytest.raises(InvalidRecipient):
        await outbound.enqueue("ann@example.org", ["a@exa_mple..org"], message(1))
    with pytest.raises(InvalidRecipient):
        await outbound.enqueue(
            "ann@example.org", ["a@b.test\r\nRCPT TO:<c@d.test>"], message(1)
        )
    with pytest.raises(QueueError):
        await outbound.enqueue("ann@example.org", [], message(1))
    with pytest.raises(QueueError):
        await outbound.enqueue(
            "ann@example.org\r\nBcc: x", ["b@remote.test"], message(1)
        )
    assert await queue_rows(mail) == (0, 0)


async def test_retry_and_delete(mail: MailRig) -> None:
    clock = ManualClock()
    with scripted_mx(data=["451 4.3.0 later"]) as mx:
        outbound = make_outbound(mail, mx, clock)
        first = await outbound.enqueue(
            "ann@example.org", ["bob@remote.test"], message(1)
        )
        await outbound.run_once()
        assert await outbound.run_once() == 0
        assert await outbound.retry(first) == 1
        assert await outbound.run_once() == 1
        assert len(mx.delivered) == 1

    blob = await mail.blobs.put_bytes(message(2))
    second = await outbound.enqueue("ann@example.org", ["x@remote.test"], message(2))
    assert await outbound.retry() == 1
    assert await outbound.delete(second) == 1
    assert await queue_rows(mail) == (0, 0)
    with pytest.raises(NoSuchQueueMessage):
        await outbound.delete(second)
    with pytest.raises(NoSuchQueueMessage):
        await outbound.retry(second)
    del blob


@pytest.mark.parametrize("queue_id", [0, -1, 2**63, 10**23])
async def test_ids_outside_the_column_are_no_such_message(
    mail: MailRig, queue_id: int
) -> None:
    """Not OverflowError (SQLite) or DataError (PostgreSQL) from the driver."""
    outbound = make_outbound(mail)
    await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
    with pytest.raises(NoSuchQueueMessage) as raised:
        await outbound.delete(queue_id)
    assert str(raised.value) == f"no such queued message: {queue_id}"
    with pytest.raises(NoSuchQueueMessage):
        await outbound.retry(queue_id)
    assert await queue_rows(mail) == (1, 1)


async def test_queue_ids_are_never_reused(mail: MailRig) -> None:
    """After the newest message is delivered or deleted, the next one gets a
    new id (on SQLite only AUTOINCREMENT promises that), so ``nubo queue
    delete ID`` and log lines never name a different message."""
    await mail.user("ann")
    with scripted_mx() as mx:
        outbound = make_outbound(mail, mx)
        delivered = await outbound.enqueue(
            "ann@example.org", ["bob@remote.test"], message(1)
        )
        assert await outbound.run_once() == 1
        assert await queue_rows(mail) == (0, 0)
        deleted = await outbound.enqueue(
            "ann@example.org", ["bob@remote.test"], message(2)
        )
        assert await outbound.delete(deleted) == 1
        assert await queue_rows(mail) == (0, 0)
        latest = await outbound.enqueue(
            "ann@example.org", ["bob@remote.test"], message(3)
        )

    assert delivered < deleted < latest
    [entry] = await outbound.list()
    assert entry.id == latest
    with pytest.raises(NoSuchQueueMessage):
        await outbound.delete(deleted)
    with pytest.raises(NoSuchQueueMessage):
        await outbound.retry(delivered)
