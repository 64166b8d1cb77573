"""Delivery through SMTP on both storage pairs (SQLite and a folder;
PostgreSQL and SeaweedFS): what the MX and submission store is exact."""

from __future__ import annotations

import asyncio
import smtplib

from tests.mail.mailstore_rig import MailRig, check_invariants
from tests.mail.queue_rig import inbox
from tests.mail.smtp_rig import in_thread, smtp_rig, submit

MESSAGE = (
    b"From: dana@example.net\r\nTo: ann@example.org, bob@example.org\r\n"
    b"Subject: both\r\n\r\n..dot\r\n\xff\xfe 8-bit\r\n"
)


async def test_mx_and_submission_deliver_on_each_pair(mail: MailRig) -> None:
    async with smtp_rig(mail, workers=True) as rig:

        def send() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", rig.port(), timeout=30) as client:
                return client.sendmail(
                    "dana@example.net", ["ann@example.org", "bob@example.org"], MESSAGE
                )

        assert await in_thread(send) == {}
        ann, bob = rig.users["ann@example.org"], rig.users["bob@example.org"]
        [to_ann] = await inbox(mail, ann)
        [to_bob] = await inbox(mail, bob)
        assert to_ann.endswith(MESSAGE) and to_bob.endswith(MESSAGE)

        note = b"From: ann@example.org\r\nTo: bob@example.org\r\n\r\nhi\r\n"
        await in_thread(
            submit, rig.port("submission"), "ann@example.org", ["bob@example.org"], note
        )
        async with asyncio.timeout(30):
            while len(await inbox(mail, bob)) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert (await inbox(mail, bob))[1].endswith(note)

    await check_invariants(mail)
