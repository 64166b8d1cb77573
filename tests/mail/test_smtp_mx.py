"""The MX over real sockets, in the test's loop: delivery, refusals, and
every bound with its reply (RFC 5321, RFC 1870, RFC 2920, RFC 3207).

The storage pair does not change what SMTP answers, so these run on the
embedded pair; ``test_smtp_delivery`` runs delivery on both.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from nubo.store.schema import queue_messages, queue_recipients
from tests.mail.dnsserver import serve_dns
from tests.mail.mailstore_rig import MailRig
from tests.mail.queue_rig import inbox
from tests.mail.smtp_rig import HOST, Raw, SmtpRig, client_tls, in_thread, smtp_rig

pytestmark = pytest.mark.parametrize("mail_pair", ["embedded"], indirect=True)

MAIL01 = Path(__file__).parent / "mail01_smtp_smuggling_data.bin"

MESSAGE = (
    b"From: Dana <dana@example.net>\r\nTo: ann@example.org\r\n"
    b"Subject: hello\r\nMessage-ID: <1@example.net>\r\n\r\nHi Ann,\r\n"
    b"..a line that starts with a dot\r\n\xc3\xa9t\xc3\xa9 8-bit\r\n"
)


@pytest.fixture
async def mx(mail: MailRig) -> AsyncIterator[SmtpRig]:
    async with smtp_rig(mail) as rig:
        yield rig


async def session(port: int) -> Raw:
    """A client past EHLO."""
    raw = await Raw.connect(port)
    assert (await raw.ehlo()).startswith("250")
    return raw


async def transaction(
    raw: Raw, rcpts: list[str], sender: str = "dana@example.net"
) -> list[str]:
    replies = [await raw.command(f"MAIL FROM:<{sender}>")]
    replies += [await raw.command(f"RCPT TO:<{rcpt}>") for rcpt in rcpts]
    return replies


async def ann_inbox(rig: SmtpRig) -> list[bytes]:
    return await inbox(rig.mail, rig.users["ann@example.org"])


# -- delivery ------------------------------------------------------------------


async def test_ehlo_advertises_the_extensions(mx: SmtpRig) -> None:
    raw = await Raw.connect(mx.port())

    lines = (await raw.ehlo()).split("\n")

    assert lines[0] == f"250-{HOST}"
    advertised = {line[4:] for line in lines[1:]}
    assert {
        "SIZE 52428800",
        "8BITMIME",
        "SMTPUTF8",
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    } <= advertised
    assert not any(line.startswith("AUTH") for line in advertised)
    await raw.close()


async def test_smtplib_delivers_the_exact_bytes_under_trace_fields(
    mx: SmtpRig,
) -> None:
    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", mx.port(), timeout=30) as client:
            return client.sendmail("dana@example.net", ["ann@example.org"], MESSAGE)

    assert await in_thread(send) == {}

    [stored] = await ann_inbox(mx)
    assert stored.startswith(b"Return-Path: <dana@example.net>\r\nReceived: from ")
    assert b"([127.0.0.1])\r\n\tby mx.example.org with ESMTP id " in stored
    # smtplib stuffs the dot; the mailbox holds the message as written.
    assert stored.endswith(MESSAGE)
    assert stored.index(b"Received:") < stored.index(b"From: Dana")


async def test_aliases_catch_all_and_tags_reach_each_user_once(mx: SmtpRig) -> None:
    await mx.accounts.add_alias(
        "team@example.org", ["ann@example.org", "bob@example.org"]
    )
    await mx.accounts.add_alias("@example.com", ["carol@example.com"])
    raw = await session(mx.port())

    replies = await transaction(
        raw,
        [
            "ann@example.org",
            "ANN+news@example.org",
            "team@example.org",
            "x@example.com",
        ],
    )
    assert replies == ["250 2.1.0 Sender OK"] + ["250 2.1.5 Recipient OK"] * 4
    assert (await raw.command("DATA")).startswith("354")
    assert (await raw.command(MESSAGE + b".")).startswith("250 2.0.0")
    await raw.close()

    assert len(await ann_inbox(mx)) == 1
    assert len(await inbox(mx.mail, mx.users["bob@example.org"])) == 1
    assert len(await inbox(mx.mail, mx.users["carol@example.com"])) == 1


async def test_the_null_sender_is_accepted(mx: SmtpRig) -> None:
    raw = await session(mx.port())

    assert (await raw.command("MAIL FROM:<>")).startswith("250 2.1.0")
    assert (await raw.command("RCPT TO:<ann@example.org>")).startswith("250")
    await raw.command("DATA")
    assert (await raw.command(MESSAGE + b".")).startswith("250 2.0.0")
    await raw.close()

    [stored] = await ann_inbox(mx)
    assert stored.startswith(b"Return-Path: <>\r\n")


async def test_pipelined_commands_get_their_replies_in_order(mx: SmtpRig) -> None:
    """RFC 2920: the whole transaction in one write."""
    raw = await session(mx.port())

    await raw.send(
        b"MAIL FROM:<dana@example.net>\r\nRCPT TO:<nobody@example.org>\r\n"
        b"RCPT TO:<ann@example.org>\r\nDATA\r\n"
    )
    replies = [await raw.reply() for _ in range(4)]
    await raw.send(MESSAGE + b".\r\nQUIT\r\n")
    replies += [await raw.reply(), await raw.reply()]

    codes = [reply[:3] for reply in replies]
    assert codes == ["250", "550", "250", "354", "250", "221"]
    assert len(await ann_inbox(mx)) == 1


async def test_smtputf8_and_8bit_are_stored_as_sent(mx: SmtpRig) -> None:
    raw = await session(mx.port())
    message = "From: jörg@bücher.example\r\nSubject: grüße\r\n\r\nÄ\r\n".encode()

    reply = await raw.command("MAIL FROM:<jörg@bücher.example> SMTPUTF8 BODY=8BITMIME")
    assert reply.startswith("250")
    assert (await raw.command("RCPT TO:<ann@example.org>")).startswith("250")
    await raw.command("DATA")
    assert (await raw.command(message + b".")).startswith("250")
    await raw.close()

    [stored] = await ann_inbox(mx)
    assert stored.endswith(message)
    assert b" with UTF8SMTP id " in stored


# -- refusals ------------------------------------------------------------------


async def test_relaying_and_unknown_users_are_refused_at_rcpt(mx: SmtpRig) -> None:
    raw = await session(mx.port())
    await raw.command("MAIL FROM:<dana@example.net>")

    assert await raw.command("RCPT TO:<ann@example.net>") == "550 5.7.1 Relaying denied"
    assert await raw.command("RCPT TO:<x@[127.0.0.1]>") == "550 5.7.1 Relaying denied"
    assert await raw.command("RCPT TO:<nobody@example.org>") == (
        "550 5.1.1 No such user here"
    )
    assert (await raw.command("RCPT TO:<no-domain>")).startswith("501 5.1.3")
    assert (await raw.command("DATA")).startswith("554 5.5.1")
    await raw.close()


async def test_a_disabled_user_is_unknown(mx: SmtpRig) -> None:
    await mx.accounts.set_disabled("bob@example.org", True)
    raw = await session(mx.port())
    await raw.command("MAIL FROM:<dana@example.net>")

    assert (await raw.command("RCPT TO:<bob@example.org>")).startswith("550 5.1.1")
    await raw.close()


async def test_auth_is_not_offered_on_the_mx(mx: SmtpRig) -> None:
    raw = await session(mx.port())
    await raw.starttls()

    assert "AUTH" not in await raw.ehlo()
    assert (await raw.command("AUTH PLAIN AGFubgB4")).startswith("504 5.5.4")
    await raw.close()


# -- MAIL-01: SMTP smuggling ---------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [b"hello\n.\r\n", b"hello\n.\n", b"hello\r.\r\n", b"hello\r\n.\n"],
    ids=["LF.CRLF", "LF.LF", "CR.CRLF", "CRLF.LF"],
)
async def test_smuggling_gets_one_refusal_and_stores_nothing(
    mx: SmtpRig, variant: bytes
) -> None:
    stream = MAIL01.read_bytes().replace(b"hello\n.\r\n", variant)
    raw = await session(mx.port())
    await transaction(raw, ["ann@example.org"])
    assert (await raw.command("DATA")).startswith("354")

    await raw.send(stream)  # one write, as MAIL-01 says
    final = await raw.reply()
    after = await raw.command("NOOP")

    assert final.startswith("554 5.6.0")
    assert "smuggling" in final
    # The next reply is NOOP's: no reply for an embedded MAIL, RCPT or DATA.
    assert after == "250 2.0.0 OK"
    await raw.close()
    assert await ann_inbox(mx) == []


# -- STARTTLS (RFC 3207) -------------------------------------------------------


async def test_commands_injected_after_starttls_are_discarded(mx: SmtpRig) -> None:
    raw = await session(mx.port())

    await raw.send(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\nNOOP\r\n")
    assert (await raw.reply()).startswith("220 2.0.0")
    await raw.writer.start_tls(client_tls())

    # Had the plaintext survived, its replies would come first, and MAIL
    # would be nested.
    assert (await raw.ehlo()).startswith(f"250-{HOST}")
    assert await raw.command("MAIL FROM:<dana@example.net>") == "250 2.1.0 Sender OK"
    await raw.close()


async def test_starttls_twice_is_refused(mx: SmtpRig) -> None:
    raw = await session(mx.port())
    await raw.starttls()
    await raw.ehlo()

    assert await raw.command("STARTTLS") == "503 5.5.1 TLS already active"
    await raw.close()


async def test_delivery_over_starttls_says_esmtps(mx: SmtpRig) -> None:
    raw = await session(mx.port())
    await raw.starttls()
    await raw.ehlo()
    await transaction(raw, ["ann@example.org"])
    await raw.command("DATA")
    assert (await raw.command(MESSAGE + b".")).startswith("250")
    await raw.close()

    [stored] = await ann_inbox(mx)
    assert b" with ESMTPS id " in stored


# -- bounds --------------------------------------------------------------------


async def test_size_declared_over_the_limit_is_refused_552(mail: MailRig) -> None:
    async with smtp_rig(mail, max_message_size=1000) as rig:
        raw = await session(rig.port())
        assert "250-SIZE 1000" in await raw.ehlo()

        reply = await raw.command("MAIL FROM:<dana@example.net> SIZE=1001")
        assert reply.startswith("552 5.3.4")
        assert (await raw.command("MAIL FROM:<dana@example.net> SIZE=999")).startswith(
            "250"
        )
        await raw.close()


async def test_data_over_the_size_is_refused_552_and_nothing_stored(
    mail: MailRig,
) -> None:
    async with smtp_rig(mail, max_message_size=1000) as rig:
        raw = await session(rig.port())
        await transaction(raw, ["ann@example.org"])
        await raw.command("DATA")

        body = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 20
        reply = await raw.command(body + b".")

        assert reply.startswith("552 5.3.4")
        assert await raw.command("NOOP") == "250 2.0.0 OK"
        await raw.close()
        assert await ann_inbox(rig) == []


async def test_a_megabyte_of_header_is_refused_552(mx: SmtpRig) -> None:
    raw = await session(mx.port())
    await transaction(raw, ["ann@example.org"])
    await raw.command("DATA")

    header = b"".join(b"X-Pad-%d: %s\r\n" % (n, b"h" * 500) for n in range(2100))
    reply = await raw.command(header + b"\r\nbody\r\n.")

    assert reply.startswith("552 5.3.4 Message header exceeds")
    await raw.close()
    assert await ann_inbox(mx) == []


async def test_long_lines_get_500(mx: SmtpRig) -> None:
    raw = await session(mx.port())

    assert (await raw.command("NOOP " + "x" * 600)).startswith("500 5.5.2")
    assert (await raw.command("NOOP " + "x" * 5000)).startswith("500 5.5.2")
    await transaction(raw, ["ann@example.org"])
    await raw.command("DATA")
    reply = await raw.command(b"Subject: x\r\n\r\n" + b"y" * 1200 + b"\r\n.")
    assert reply.startswith("500 5.6.0 Line too long")
    await raw.close()
    assert await ann_inbox(mx) == []


async def test_mail_line_limit_does_not_grow_with_each_ehlo(mx: SmtpRig) -> None:
    """aiosmtpd adds SIZE's 26 octets to the MAIL limit at every EHLO."""
    raw = await Raw.connect(mx.port())
    for _ in range(30):
        await raw.ehlo()

    address = "a" * 40 + "@example.net"
    reply = await raw.command(f"MAIL FROM:<{address}> " + "X" * 560)

    assert reply.startswith("500 5.5.2")
    await raw.close()


async def test_too_many_recipients_get_452(mail: MailRig) -> None:
    async with smtp_rig(mail, smtp_max_recipients=2) as rig:
        await rig.accounts.add_alias("@example.com", ["carol@example.com"])
        raw = await session(rig.port())

        replies = await transaction(
            raw, ["a@example.com", "b@example.com", "c@example.com"]
        )

        assert replies[1:] == [
            "250 2.1.5 Recipient OK",
            "250 2.1.5 Recipient OK",
            "452 4.5.3 Too many recipients",
        ]
        await raw.command("DATA")
        assert (await raw.command(MESSAGE + b".")).startswith("250")
        await raw.close()


async def test_pipelined_recipients_past_the_limit_do_not_end_the_session(
    mail: MailRig,
) -> None:
    """RFC 5321 §4.5.3.1.10: 452 for each recipient past the server's limit,
    which is no error of the client's; DATA goes on for the accepted ones."""
    async with smtp_rig(mail) as rig:  # smtp_max_recipients: 100
        await rig.accounts.add_alias("@example.com", ["carol@example.com"])
        raw = await session(rig.port())

        rcpts = b"".join(b"RCPT TO:<r%d@example.com>\r\n" % n for n in range(125))
        await raw.send(b"MAIL FROM:<dana@example.net>\r\n" + rcpts + b"DATA\r\n")
        replies = [await raw.reply() for _ in range(127)]

        assert replies[0].startswith("250 2.1.0")
        assert replies[1:101] == ["250 2.1.5 Recipient OK"] * 100
        assert replies[101:126] == ["452 4.5.3 Too many recipients"] * 25
        assert replies[126].startswith("354")
        assert (await raw.command(MESSAGE + b".")).startswith("250 2.0.0")
        assert (await raw.command("QUIT")).startswith("221")
        [stored] = await inbox(rig.mail, rig.users["carol@example.com"])
        assert stored.endswith(MESSAGE.replace(b"\n..", b"\n."))


async def test_a_silent_client_gets_421_and_is_closed(mail: MailRig) -> None:
    async with smtp_rig(mail, smtp_command_timeout=0.3) as rig:
        raw = await session(rig.port())

        assert (
            await raw.reply(wait=10)
            == "421 4.4.2 Timeout waiting for the client, closing"
        )
        assert await raw.rest() == b""


async def test_slow_data_is_cut_by_the_command_timeout(mail: MailRig) -> None:
    async with smtp_rig(mail, smtp_command_timeout=0.3) as rig:
        raw = await session(rig.port())
        await transaction(raw, ["ann@example.org"])
        await raw.command("DATA")
        await raw.send(b"Subject: half\r\n")

        assert (await raw.reply(wait=10)).startswith("421 4.4.2")
        assert await raw.rest() == b""
        assert await ann_inbox(rig) == []


async def test_slow_but_never_silent_data_is_taken(mail: MailRig) -> None:
    """RFC 5321 §4.5.3.2: the timeout is for silence; a client that sends a
    line now and then, for longer than the timeout in all, is not cut."""
    async with smtp_rig(mail, smtp_command_timeout=1.0) as rig:
        raw = await session(rig.port())
        await transaction(raw, ["ann@example.org"])
        await raw.command("DATA")

        lines = MESSAGE.splitlines(keepends=True)
        for line in lines:  # about 2.4 s in all, 0.3 s of silence at most
            await raw.send(line)
            await asyncio.sleep(0.3)
        await raw.send(b".\r\n")

        assert (await raw.reply()).startswith("250 2.0.0")
        assert (await raw.command("QUIT")).startswith("221")
        [stored] = await ann_inbox(rig)
        assert stored.endswith(MESSAGE.replace(b"\n..", b"\n."))


async def test_a_session_past_its_time_gets_421(mail: MailRig) -> None:
    async with smtp_rig(mail, smtp_session_timeout=0.5) as rig:
        raw = await session(rig.port())
        replies = []
        for _ in range(50):
            reply = await raw.command("NOOP")
            replies.append(reply)
            if not reply.startswith("250"):
                break
            await asyncio.sleep(0.05)

        assert replies[-1] == "421 4.4.2 Session time limit reached, closing"
        # Closed after the 421, with nothing more. The time limit may fall
        # while a NOOP is on its way: closing with it unread resets the
        # connection instead of ending it, which is closed all the same.
        try:
            rest = await raw.rest()
        except ConnectionResetError:
            rest = b""
        assert rest == b""


async def test_too_many_errors_get_421(mx: SmtpRig) -> None:
    raw = await session(mx.port())

    replies = [await raw.command("RCPT TO:<ann@example.org>") for _ in range(20)]

    assert replies[0].startswith("503 5.5.1")
    assert replies[-1].split("\n")[-1] == "503 5.5.1 Error: need MAIL command"
    assert (await raw.reply()).startswith("421 4.7.0 Too many errors")
    assert await raw.rest() == b""


# -- quota ---------------------------------------------------------------------


async def test_a_full_mailbox_is_refused_452_at_rcpt(mx: SmtpRig) -> None:
    await mx.accounts.set_quota("ann@example.org", 2000)
    raw = await session(mx.port())

    await raw.command("MAIL FROM:<dana@example.net> SIZE=5000")
    assert await raw.command("RCPT TO:<ann@example.org>") == (
        "452 4.2.2 Mailbox full, try again later"
    )
    await raw.command("RSET")
    await raw.command("MAIL FROM:<dana@example.net> SIZE=500")
    assert (await raw.command("RCPT TO:<ann@example.org>")).startswith("250")
    await raw.close()


async def test_a_message_past_the_quota_is_refused_552_at_data(mx: SmtpRig) -> None:
    await mx.accounts.set_quota("ann@example.org", 2000)
    raw = await session(mx.port())
    await transaction(raw, ["ann@example.org"])
    await raw.command("DATA")

    big = b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 60

    assert await raw.command(big + b".") == "552 5.2.2 Mailbox full"
    await raw.close()
    assert await ann_inbox(mx) == []


async def test_one_full_user_of_an_alias_is_queued_not_dropped(mx: SmtpRig) -> None:
    """RFC 5321 §4.2.5: one reply for the message; the store refused ann, so
    the queue takes her copy (it retries, or bounces with a DSN)."""
    await mx.accounts.set_quota("ann@example.org", 2000)
    await mx.accounts.add_alias(
        "team@example.org", ["ann@example.org", "bob@example.org"]
    )
    raw = await session(mx.port())
    await transaction(raw, ["team@example.org"])
    await raw.command("DATA")

    big = b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 60
    assert (await raw.command(big + b".")).startswith("250 2.0.0")
    await raw.close()

    [stored] = await inbox(mx.mail, mx.users["bob@example.org"])
    assert await ann_inbox(mx) == []
    async with mx.mail.db.read() as conn:
        queued = (await conn.execute(select(queue_recipients.c.recipient))).all()
        [blob_id] = (await conn.execute(select(queue_messages.c.blob_id))).scalars()
    assert [row.recipient for row in queued] == ["ann@example.org"]
    # The queue adds Return-Path when it delivers ann's copy: queued without.
    queued_bytes = await mx.mail.blobs.read_bytes(blob_id)
    assert queued_bytes.startswith(b"Received: from ")
    assert stored == b"Return-Path: <dana@example.net>\r\n" + queued_bytes


# -- verification and logs ----------------------------------------------------


async def test_spf_dkim_dmarc_results_are_prepended(mail: MailRig) -> None:
    records = {
        "example.net": {"TXT": ["v=spf1 ip4:127.0.0.1 -all"]},
        "_dmarc.example.net": {"TXT": ["v=DMARC1; p=reject"]},
    }
    with serve_dns(records) as servers:
        async with smtp_rig(mail, smtp_verify=True, dns_servers=servers) as rig:
            raw = await session(rig.port())
            await transaction(raw, ["ann@example.org"])
            await raw.command("DATA")
            assert (await raw.command(MESSAGE + b".")).startswith("250")
            await raw.close()

            [stored] = await ann_inbox(rig)

    fields, _, rest = stored.partition(b"From: Dana")
    assert fields.startswith(b"Return-Path: ")
    assert fields.index(b"Received: ") < fields.index(b"Authentication-Results: ")
    results = fields[fields.index(b"Authentication-Results: ") :]
    assert results.startswith(b"Authentication-Results: mx.example.org;")
    assert b"spf=pass smtp.mailfrom=dana@example.net" in results
    assert b"dkim=none" in results
    assert b"dmarc=pass" in results
    assert b"From: Dana" + rest == MESSAGE.replace(b"\r\n..", b"\r\n.")  # unstuffed


async def test_logs_hold_no_address_and_no_content(
    mx: SmtpRig, caplog: pytest.LogCaptureFixture
) -> None:
    # aiosmtpd's own logger ("mail.log") keeps the level nubo gave it.
    caplog.set_level(logging.DEBUG, logger="nubo")
    raw = await session(mx.port())
    await transaction(raw, ["ann@example.org", "nobody@example.org"])
    await raw.command("DATA")
    await raw.command(MESSAGE + b".")
    await raw.command("QUIT")
    await raw.close()
    async with asyncio.timeout(10):
        while mx.listeners["smtp"].sessions:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    text = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("nubo", "mail.log"))
    )
    assert "smtp message listener=smtp id=" in text
    assert "smtp session end listener=smtp network=127.0.0.0/24" in text
    for private in ("dana", "ann@", "nobody", "hello", "Hi Ann", "127.0.0.1"):
        assert private not in text, private


async def test_shutdown_tells_idle_sessions_421(mail: MailRig) -> None:
    async with smtp_rig(mail) as rig:
        port = rig.port()
        raw = await session(port)
        listener = rig.listeners["smtp"]

        stopping = asyncio.create_task(listener.stop(5.0))

        assert await raw.reply() == "421 4.3.2 Service shutting down, try again later"
        assert await raw.rest() == b""
        await stopping
        assert not listener.sessions
        with pytest.raises(ConnectionRefusedError):
            await Raw.connect(port)


async def test_a_store_failure_is_451_not_a_traceback(
    mx: SmtpRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(address: str) -> list[object]:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    raw = await session(mx.port())
    await raw.command("MAIL FROM:<dana@example.net>")
    monkeypatch.setattr(mx.accounts, "resolve", broken)

    reply = await raw.command("RCPT TO:<ann@example.org>")

    assert reply == "451 4.3.0 Local error in processing, try again later"
    monkeypatch.undo()
    assert (await raw.command("RCPT TO:<ann@example.org>")).startswith("250")
    await raw.close()
