"""Transcripts of GETQUOTA and GETQUOTAROOT (RFC 9208): one root "" per
user, STORAGE in units of 1024 octets; none for a user without a quota.
Each test runs on both storage pairs."""

from __future__ import annotations

from tests.mail.imap.imap_rig import imap_rig
from tests.mail.mailstore_rig import MailRig, message

ANN = "ann@example.org"


async def test_getquotaroot_and_getquota(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await rig.accounts.set_quota(ANN, 10 * 1024 * 1024 + 1000)
        body = message(1, 5000)
        await rig.deliver(ANN, body)
        used_kib = -(-len(body) // 1024)  # rounded up
        c = await rig.client(login=ANN)

        assert await c.command("GETQUOTAROOT INBOX") == [
            b'* QUOTAROOT INBOX ""\r\n',
            b'* QUOTA "" (STORAGE %d 10240)\r\n' % used_kib,
            b"t2 OK GETQUOTAROOT completed\r\n",
        ]
        assert await c.command('GETQUOTA ""') == [
            b'* QUOTA "" (STORAGE %d 10240)\r\n' % used_kib,
            b"t3 OK GETQUOTA completed\r\n",
        ]
        # Every mailbox is under the same root; names go out in UTF-7.
        await c.ok("CREATE Entw&APw-rfe")
        assert await c.command("GETQUOTAROOT Entw&APw-rfe") == [
            b'* QUOTAROOT Entw&APw-rfe ""\r\n',
            b'* QUOTA "" (STORAGE %d 10240)\r\n' % used_kib,
            b"t5 OK GETQUOTAROOT completed\r\n",
        ]


async def test_quota_refusals(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await rig.accounts.set_quota(ANN, 1024 * 1024)
        c = await rig.client(login=ANN)
        assert await c.command("GETQUOTAROOT Nowhere") == [
            b"t2 NO [NONEXISTENT] no such mailbox\r\n"
        ]
        assert await c.command("GETQUOTA user.ann") == [
            b"t3 NO [NONEXISTENT] no such quota root\r\n"
        ]
        # RFC 9208 §4.1.3 SETQUOTA is not offered.
        lines = await c.command('SETQUOTA "" (STORAGE 10)')
        assert lines[-1].startswith(b"t4 BAD ")
        assert (await rig.mail.store.usage(rig.users[ANN]))[1] == 1024 * 1024

        anonymous = await rig.client()
        lines = await anonymous.command("GETQUOTAROOT INBOX")
        assert lines == [b"t1 BAD Sign in first (LOGIN or AUTHENTICATE)\r\n"]


async def test_unlimited_user_has_no_quota_root(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await rig.accounts.set_quota(ANN, 0)
        c = await rig.client(login=ANN)
        assert await c.command("GETQUOTAROOT inbox") == [
            b"* QUOTAROOT INBOX\r\n",
            b"t2 OK GETQUOTAROOT completed\r\n",
        ]
        assert await c.command('GETQUOTA ""') == [
            b"t3 NO [NONEXISTENT] no such quota root\r\n"
        ]


async def test_quota_follows_appends(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await rig.accounts.set_quota(ANN, 2 * 1024 * 1024)
        c = await rig.client(login=ANN)
        assert await c.command('GETQUOTA ""') == [
            b'* QUOTA "" (STORAGE 0 2048)\r\n',
            b"t2 OK GETQUOTA completed\r\n",
        ]
        body = message(1, 4096)[:4096]
        await c.send(b"a1 APPEND INBOX {4096+}\r\n" + body + b"\r\n")
        assert (await c.until("a1"))[-1].startswith(b"a1 OK [APPENDUID ")
        assert await c.command('GETQUOTA ""') == [
            b'* QUOTA "" (STORAGE 4 2048)\r\n',
            b"t3 OK GETQUOTA completed\r\n",
        ]
