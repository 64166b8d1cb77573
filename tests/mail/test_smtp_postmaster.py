"""RFC 5321 §4.5.1: ``postmaster`` of every hosted domain, and the bare
``<postmaster>``, in any case, take mail even with no user or alias of that
name: the domain's administrators get it, or every administrator when the
domain has none. An alias named postmaster wins. Over real sockets with
smtplib, through the MX and through submission."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator

import pytest

from tests.mail.mailstore_rig import MailRig
from tests.mail.queue_rig import inbox
from tests.mail.smtp_rig import PASSWORD, SmtpRig, in_thread, smtp_rig, submit

pytestmark = pytest.mark.parametrize("mail_pair", ["embedded"], indirect=True)

NOTE = b"From: dana@example.net\r\nSubject: abuse report\r\n\r\nSee below.\r\n"


@pytest.fixture
async def rig(mail: MailRig) -> AsyncIterator[SmtpRig]:
    """The SMTP rig with one administrator, root, at example.org; carol's
    example.com has none."""
    async with smtp_rig(mail, workers=True) as rig:
        root = await rig.accounts.add_user("root@example.org", PASSWORD, is_admin=True)
        rig.users[root.address] = root.id
        yield rig


def send_mx(port: int, recipients: list[str], message: bytes = NOTE) -> dict[str, str]:
    """Each recipient's RCPT reply code and text, then DATA's, over smtplib."""
    replies: dict[str, str] = {}
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example.net")
        client.mail("dana@example.net")
        for recipient in recipients:
            code, text = client.rcpt(recipient)
            replies[recipient] = f"{code} {text.decode()}"
        code, text = client.data(message)
        replies["DATA"] = f"{code} {text.decode()[:5]}"
    return replies


async def count(rig: SmtpRig, address: str) -> int:
    return len(await inbox(rig.mail, rig.users[address]))


async def test_postmaster_of_a_domain_reaches_its_administrators(
    rig: SmtpRig,
) -> None:
    replies = await in_thread(send_mx, rig.port(), ["PostMaster@Example.org"])

    assert replies == {
        "PostMaster@Example.org": "250 2.1.5 Recipient OK",
        "DATA": "250 2.0.0",
    }
    [stored] = await inbox(rig.mail, rig.users["root@example.org"])
    assert stored.endswith(NOTE)
    assert await count(rig, "ann@example.org") == 0


async def test_domain_without_administrators_goes_to_every_administrator(
    rig: SmtpRig,
) -> None:
    replies = await in_thread(send_mx, rig.port(), ["postmaster@example.com"])

    assert replies["postmaster@example.com"] == "250 2.1.5 Recipient OK"
    assert await count(rig, "root@example.org") == 1
    assert await count(rig, "carol@example.com") == 0


async def test_bare_postmaster_in_any_case(rig: SmtpRig) -> None:
    replies = await in_thread(send_mx, rig.port(), ["<POSTMASTER>"])

    assert replies["<POSTMASTER>"] == "250 2.1.5 Recipient OK"
    assert await count(rig, "root@example.org") == 1


async def test_an_alias_named_postmaster_wins(rig: SmtpRig) -> None:
    await rig.accounts.add_alias("postmaster@example.org", ["bob@example.org"])
    await in_thread(send_mx, rig.port(), ["postmaster@example.org"])

    assert await count(rig, "bob@example.org") == 1
    assert await count(rig, "root@example.org") == 0


async def test_a_catch_all_does_not_take_the_postmasters_mail(rig: SmtpRig) -> None:
    await rig.accounts.add_alias("@example.org", ["ann@example.org"])
    await in_thread(send_mx, rig.port(), ["postmaster@example.org"])

    assert await count(rig, "root@example.org") == 1
    assert await count(rig, "ann@example.org") == 0


async def test_postmaster_of_a_domain_not_hosted_is_still_relaying(
    rig: SmtpRig,
) -> None:
    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", rig.port(), timeout=30) as client:
            client.ehlo("client.example.net")
            client.mail("dana@example.net")
            return client.rcpt("postmaster@example.net")

    code, text = await in_thread(send)
    assert (code, text) == (550, b"5.7.1 Relaying denied")


async def until_delivered(rig: SmtpRig, address: str) -> None:
    """Wait for the queue's workers to deliver one message to ``address``."""
    async with asyncio.timeout(20):
        while await count(rig, address) == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("recipient", ["postmaster@example.com", "postmaster"])
async def test_submission_takes_the_postmaster_and_the_queue_delivers(
    rig: SmtpRig, recipient: str
) -> None:
    message = b"From: ann@example.org\r\nSubject: disk full?\r\n\r\nHelp.\r\n"
    refused = await in_thread(
        submit, rig.port("submission"), "ann@example.org", [recipient], message
    )

    assert refused == {}
    await until_delivered(rig, "root@example.org")
    [stored] = await inbox(rig.mail, rig.users["root@example.org"])
    assert stored.startswith(b"Return-Path: <ann@example.org>\r\n")
    assert stored.endswith(message)
