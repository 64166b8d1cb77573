"""Submission over real sockets, in the test's loop (RFC 6409, RFC 4954,
RFC 8314): AUTH, who may send as whom, the rate limit, DKIM, the Sent copy
and the queue, local and remote."""

from __future__ import annotations

import asyncio
import base64
import logging
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.parser import BytesHeaderParser

import dkim as dkimpy  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select

from nubo.accounts import ManualClock
from nubo.mail import dkim
from nubo.mail.queue import InvalidRecipient, QueueError
from nubo.store.schema import queue_recipients
from tests.mail.mailstore_rig import MailRig
from tests.mail.queue_rig import inbox, untraced
from tests.mail.scripted_mx import scripted_mx
from tests.mail.smtp_rig import PASSWORD, Raw, SmtpRig, in_thread, smtp_rig, submit

pytestmark = pytest.mark.parametrize("mail_pair", ["embedded"], indirect=True)

ANN = "ann@example.org"
BOB = "bob@example.org"


def note(sender: str = ANN, to: str = BOB, subject: str = "lunch") -> bytes:
    return (
        f"From: Ann <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
        f"Message-ID: <{subject}@example.org>\r\n\r\nAt noon?\r\n"
    ).encode()


def plain(login: str, password: str = PASSWORD) -> str:
    token = base64.b64encode(f"\0{login}\0{password}".encode()).decode()
    return f"AUTH PLAIN {token}"


@pytest.fixture
async def msa(mail: MailRig) -> AsyncIterator[SmtpRig]:
    async with smtp_rig(mail) as rig:
        yield rig


async def signed_in(rig: SmtpRig, login: str = ANN) -> Raw:
    raw = await Raw.connect(rig.port("submission"))
    await raw.ehlo()
    await raw.starttls()
    await raw.ehlo()
    assert (await raw.command(plain(login))).startswith("235 2.7.0")
    return raw


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    """Poll ``check`` until true: the queue works in tasks of its own."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def mailbox(
    rig: SmtpRig, address: str, special: str | None = None
) -> list[bytes]:
    user_id = rig.users[address]
    if special is None:
        return await inbox(rig.mail, user_id)
    box = await rig.mail.store.special_mailbox(user_id, special)
    rows = await rig.mail.store.messages(box.id, with_info=False)
    return [await rig.mail.store.read_message(row.blob_id) for row in rows]


async def dns_txt(rig: SmtpRig, domain: str) -> dict[bytes, bytes]:
    """The DKIM record the domain would publish, keyed as dkimpy asks."""
    found = await rig.accounts.find_domain(domain)
    assert found is not None
    key = await dkim.ensure_key(
        rig.mail.db, found.id, rig.services.config.dkim_selector
    )
    name = dkim.dns_name(key, domain) + "."
    return {name.encode(): dkim.dns_record(key).encode()}


def verifies(message: bytes, records: dict[bytes, bytes]) -> bool:
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return records.get(name, b"")

    return bool(dkimpy.verify(message, dnsfunc=lookup))


# -- AUTH ----------------------------------------------------------------------


async def test_auth_is_offered_and_taken_only_after_tls(msa: SmtpRig) -> None:
    raw = await Raw.connect(msa.port("submission"))

    ehlo = await raw.ehlo()
    assert "STARTTLS" in ehlo and "AUTH" not in ehlo
    assert (await raw.command(plain(ANN))).startswith("538 5.7.11")
    assert (await raw.command("MAIL FROM:<ann@example.org>")).startswith("530 5.7.0")

    await raw.starttls()
    assert "250-AUTH LOGIN PLAIN" in await raw.ehlo()
    assert (await raw.command(plain(ANN))).startswith("235 2.7.0")
    await raw.close()


async def test_bad_credentials_get_535(msa: SmtpRig) -> None:
    raw = await Raw.connect(msa.port("submission"))
    await raw.ehlo()
    await raw.starttls()
    await raw.ehlo()

    assert await raw.command(plain(ANN, "wrong")) == (
        "535 5.7.8 Authentication credentials invalid"
    )
    assert await raw.command(plain("nobody@example.org")) == (
        "535 5.7.8 Authentication credentials invalid"
    )
    for garbage in ("AUTH PLAIN !!!", "AUTH PLAIN " + base64.b64encode(b"a").decode()):
        assert (await raw.command(garbage)).startswith("501 5.5.2")
    impostor = base64.b64encode(f"{BOB}\0{ANN}\0{PASSWORD}".encode()).decode()
    assert (await raw.command(f"AUTH PLAIN {impostor}")).startswith("535 5.7.8")
    assert (await raw.command("AUTH CRAM-MD5")).startswith("504 5.5.4")
    await raw.close()


async def test_login_mechanism_and_app_passwords(msa: SmtpRig) -> None:
    _created, secret = await msa.accounts.add_app_password(ANN, "phone")
    raw = await Raw.connect(msa.port("submission"))
    await raw.ehlo()
    await raw.starttls()
    await raw.ehlo()

    assert (await raw.command("AUTH LOGIN")).startswith("334 ")
    assert (await raw.command(base64.b64encode(ANN.encode()))).startswith("334 ")
    reply = await raw.command(base64.b64encode(secret.encode()))
    assert reply.startswith("235 2.7.0")
    await raw.close()


async def test_an_overlong_auth_answer_gets_500(msa: SmtpRig) -> None:
    raw = await Raw.connect(msa.port("submission"))
    await raw.ehlo()
    await raw.starttls()
    await raw.ehlo()

    assert (await raw.command("AUTH PLAIN")).startswith("334")
    reply = await raw.command(b"QUFB" * 3300)  # 13200 octets

    assert reply.startswith("500 5.5.6")
    await raw.close()


async def test_auth_lines_of_12288_octets_are_taken(msa: SmtpRig) -> None:
    """RFC 4954 §4: AUTH lines, and answers to challenges, of at least 12288
    octets; other commands keep RFC 5321's 512."""
    raw = await Raw.connect(msa.port("submission"))
    await raw.ehlo()
    await raw.starttls()
    await raw.ehlo()
    long_plain = plain(ANN, "w" * 3000)  # about 4000 octets, a wrong password
    longest = plain(ANN, "w" * 9188)  # base64 comes in fours: 12287 octets

    assert len(long_plain) > 4000 and len(longest) == 12287
    assert (await raw.command(long_plain)).startswith("535 5.7.8")
    assert (await raw.command(longest)).startswith("535 5.7.8")
    assert (await raw.command("AUTH PLAIN")).startswith("334")
    assert (await raw.command(longest[len("AUTH PLAIN ") :])).startswith("535 5.7.8")
    too_long = plain(ANN, "w" * 9800)
    assert len(too_long) > 13000
    assert (await raw.command(too_long)).startswith("500 5.5.2")
    assert (await raw.command("NOOP " + "x" * 600)).startswith("500 5.5.2")
    # The session is still usable.
    assert (await raw.command(plain(ANN))).startswith("235 2.7.0")
    await raw.close()


async def test_a_locked_account_gets_454(mail: MailRig) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    async with smtp_rig(mail, clock=clock, lockout_threshold=1) as rig:
        raw = await Raw.connect(rig.port("submission"))
        await raw.ehlo()
        await raw.starttls()
        await raw.ehlo()

        replies = [await raw.command(plain(ANN, "wrong")) for _ in range(6)]

        assert replies[0].startswith("535 5.7.8")
        assert replies[-1] == (
            "454 4.7.0 Temporary authentication failure, try again later"
        )
        # Locked: even the right password waits.
        assert (await raw.command(plain(ANN))).startswith("454 4.7.0")
        await raw.close()


# -- who may send as whom ------------------------------------------------------


async def test_the_envelope_sender_must_be_the_users(msa: SmtpRig) -> None:
    await msa.accounts.add_alias("team@example.org", [ANN])
    raw = await signed_in(msa)

    for sender in (BOB, "ann@example.com", "@", ""):
        reply = await raw.command(f"MAIL FROM:<{sender}>")
        assert reply.startswith(("553 5.7.1", "501", "553 5.1.3")), (sender, reply)
    assert (await raw.command("MAIL FROM:<>")).startswith("553 5.7.1")
    for sender in ("team@example.org", "ann+x@example.org", "ANN@example.org"):
        assert (await raw.command(f"MAIL FROM:<{sender}>")).startswith("250")
        await raw.command("RSET")
    await raw.close()


@pytest.mark.parametrize(
    "header",
    [
        b"From: bob@example.org\r\n",
        b"From: ann@example.org, bob@example.org\r\n",
        b"From: ann@example.org\r\nSender: bob@example.org\r\n",
        b"From: undisclosed:;\r\n",
    ],
    ids=["other", "second-author", "sender", "empty-group"],
)
async def test_the_from_field_must_be_the_users(msa: SmtpRig, header: bytes) -> None:
    raw = await signed_in(msa)
    await raw.command(f"MAIL FROM:<{ANN}>")
    await raw.command(f"RCPT TO:<{BOB}>")
    await raw.command("DATA")

    reply = await raw.command(header + b"Subject: hi\r\n\r\nhi\r\n.")

    assert reply.startswith("553 5.7.1")
    await raw.close()


async def test_a_message_without_from_is_refused(msa: SmtpRig) -> None:
    raw = await signed_in(msa)
    await raw.command(f"MAIL FROM:<{ANN}>")
    await raw.command(f"RCPT TO:<{BOB}>")
    await raw.command("DATA")

    assert (await raw.command(b"Subject: hi\r\n\r\nhi\r\n.")).startswith("550 5.6.0")
    await raw.close()


async def test_recipients_unknown_here_are_refused_at_once(msa: SmtpRig) -> None:
    raw = await signed_in(msa)
    await raw.command(f"MAIL FROM:<{ANN}>")

    assert (await raw.command("RCPT TO:<nobody@example.org>")).startswith("550 5.1.1")
    assert (await raw.command("RCPT TO:<not an address>")).startswith("501 5.1.3")
    assert (await raw.command("RCPT TO:<someone@example.net>")).startswith("250")
    await raw.close()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidRecipient("invalid recipient: no domain"), "550 5.1.3 "),
        (QueueError("a message needs at least one recipient"), "451 4.3.0 "),
    ],
    ids=["invalid-recipient", "queue-error"],
)
async def test_a_queue_refusal_is_a_reply_not_a_dropped_connection(
    msa: SmtpRig,
    monkeypatch: pytest.MonkeyPatch,
    error: QueueError,
    expected: str,
) -> None:
    """RCPT already checks what the queue checks, so only a queue standing in
    for a changed rule can refuse here."""

    async def refuse(*args: object, **kwargs: object) -> int:
        raise error

    monkeypatch.setattr(msa.services.outbound, "enqueue", refuse)
    raw = await signed_in(msa)
    await raw.command(f"MAIL FROM:<{ANN}>")
    await raw.command(f"RCPT TO:<{BOB}>")
    await raw.command("DATA")

    assert (await raw.command(note() + b".")).startswith(expected)
    # The session goes on, and nothing was copied to Sent.
    assert (await raw.command("NOOP")).startswith("250")
    assert await mailbox(msa, ANN, "Sent") == []
    await raw.close()


# -- sending -------------------------------------------------------------------


async def test_local_mail_reaches_the_inbox_signed_with_a_sent_copy(
    mail: MailRig,
) -> None:
    async with smtp_rig(mail, workers=True) as rig:
        message = note()
        port = rig.port("submission")

        assert await in_thread(submit, port, ANN, [BOB], message) == {}

        async def arrived() -> bool:
            return len(await mailbox(rig, BOB)) == 1

        await until(arrived)
        [received] = await mailbox(rig, BOB)
        [sent] = await mailbox(rig, ANN, "Sent")

        # Bob's copy has the trace of its final delivery (RFC 5321 §4.4);
        # ann's Sent copy stays as submitted.
        assert untraced(received) == sent
        assert received.startswith(b"Return-Path: <ann@example.org>\r\n")
        assert sent.endswith(message)
        assert sent.startswith(b"DKIM-Signature: ")
        assert b" with ESMTPSA id " in sent
        # Where the member sent from stays private.
        assert b"127.0.0.1" not in sent
        assert b"Received: from submission\r\n" in sent
        assert verifies(sent, await dns_txt(rig, "example.org"))


async def test_implicit_tls_on_submissions(mail: MailRig) -> None:
    async with smtp_rig(mail, workers=True) as rig:
        port = rig.port("submissions")

        result = await in_thread(
            submit, port, ANN, [BOB], note(subject="tls"), implicit_tls=True
        )

        assert result == {}
        [sent] = await mailbox(rig, ANN, "Sent")
        assert b"Subject: tls" in sent


async def test_date_and_message_id_are_added_when_missing(msa: SmtpRig) -> None:
    bare = b"From: ann@example.org\r\nTo: bob@example.org\r\n\r\nhi\r\n"

    await in_thread(submit, msa.port("submission"), ANN, [BOB], bare)

    [sent] = await mailbox(msa, ANN, "Sent")
    header = BytesHeaderParser().parsebytes(sent)
    assert header["Date"] and header["Message-ID"].endswith("@mx.example.org>")
    assert sent.endswith(bare)
    assert verifies(sent, await dns_txt(msa, "example.org"))


async def test_remote_mail_goes_to_the_mx_signed(mail: MailRig) -> None:
    with scripted_mx() as mx:
        async with smtp_rig(mail, workers=True, mx_override=f"*={mx.address}") as rig:
            message = note(to="dana@example.net")

            await in_thread(
                submit, rig.port("submission"), ANN, ["dana@example.net"], message
            )

            async def delivered() -> bool:
                return len(mx.delivered) == 1

            await until(delivered)
            [got] = mx.delivered
            assert got.mail_from == ANN
            assert got.rcpt_tos == ("dana@example.net",)
            assert got.data.endswith(message)
            assert verifies(got.data, await dns_txt(rig, "example.org"))
            [sent] = await mailbox(rig, ANN, "Sent")
            assert sent == got.data


async def test_the_rate_limit_answers_450(mail: MailRig) -> None:
    async with smtp_rig(mail, submission_rate_limit=2) as rig:
        port = rig.port("submission")
        for n in range(2):
            await in_thread(submit, port, ANN, [BOB], note(subject=f"n{n}"))

        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            await in_thread(submit, port, ANN, [BOB], note(subject="n2"))

        assert refused.value.smtp_code == 450
        assert refused.value.smtp_error.startswith(b"4.7.1")
        # Another user has a count of their own.
        await in_thread(submit, port, BOB, [ANN], note(sender=BOB, to=ANN))


async def queued(rig: SmtpRig) -> list[str]:
    async with rig.mail.db.read() as conn:
        rows = await conn.execute(select(queue_recipients.c.recipient))
        return [row.recipient for row in rows]


async def test_no_room_for_the_sent_copy_refuses_the_submission(
    msa: SmtpRig,
) -> None:
    """A message must not go out with its Sent copy dropped in silence: 552
    before anything is queued, and the member makes room first."""
    await msa.accounts.set_quota(ANN, 300)  # less than the signed message

    with pytest.raises(smtplib.SMTPDataError) as refused:
        await in_thread(submit, msa.port("submission"), ANN, [BOB], note())

    assert refused.value.smtp_code == 552
    assert refused.value.smtp_error == (
        b"5.2.2 Your mailbox is full; the copy for Sent cannot be saved"
    )
    assert await queued(msa) == []
    assert await mailbox(msa, ANN, "Sent") == []
    assert await mailbox(msa, BOB) == []


async def test_a_sent_copy_refused_after_queueing_is_logged(
    msa: SmtpRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The room checked before queueing is gone when the copy is stored (a
    delivery took it meanwhile): the message is out, the log says so."""
    await msa.accounts.set_quota(ANN, 300)  # less than the signed message

    async def roomy(user_id: int) -> tuple[int, int]:
        return 0, 0

    monkeypatch.setattr(msa.services.mailstore, "usage", roomy)
    with caplog.at_level(logging.WARNING, logger="nubo.mail.smtp"):
        result = await in_thread(submit, msa.port("submission"), ANN, [BOB], note())

    assert result == {}
    assert await queued(msa) == [BOB]
    assert await mailbox(msa, ANN, "Sent") == []
    assert "smtp sent copy not stored" in caplog.text


async def test_pipelined_recipients_past_the_limit_are_452_and_the_rest_sent(
    msa: SmtpRig,
) -> None:
    """RFC 5321 §4.5.3.1.10: the 25 past smtp_max_recipients (100) get 452,
    which does not end the session; the message is queued for the 100."""
    raw = await signed_in(msa)
    rcpts = [f"r{n}@example.net" for n in range(125)]
    commands = [f"MAIL FROM:<{ANN}>", *(f"RCPT TO:<{r}>" for r in rcpts), "DATA"]

    await raw.send("".join(line + "\r\n" for line in commands).encode())
    replies = [await raw.reply() for _ in commands]

    assert [reply[:9] for reply in replies[1:-1]] == (
        ["250 2.1.5"] * 100 + ["452 4.5.3"] * 25
    )
    assert replies[-1].startswith("354")
    assert (await raw.command(note() + b".")).startswith("250 2.0.0")
    assert sorted(await queued(msa)) == sorted(rcpts[:100])
    await raw.close()
