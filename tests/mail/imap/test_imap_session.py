"""The IMAP session over real sockets: greeting, capabilities, sign-in,
TLS, states, bounds, SELECT/EXAMINE/CLOSE/UNSELECT, NOOP and IDLE news."""

from __future__ import annotations

import asyncio
import base64
import re

import pytest

from nubo.mail.imap.lexer import Limits
from nubo.mail.imap.session import SessionLimits
from tests.mail.imap.imap_rig import PASSWORD, client_tls, imap_rig
from tests.mail.mailstore_rig import MailRig, message

ANN = "ann@example.org"


def caps(line: bytes) -> set[str]:
    found = re.search(rb"CAPABILITY ([^\]\r]*)", line)
    assert found is not None, line
    return set(found.group(1).decode().split())


async def test_greeting_and_capabilities_follow_the_state(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        client = await rig.client()
        before = caps(client.greeting)
        assert {"IMAP4rev1", "STARTTLS", "AUTH=PLAIN", "LITERAL+", "SASL-IR"} <= before
        assert "LOGINDISABLED" not in before  # loopback counts as secure
        assert "UIDPLUS" not in before  # said only after sign-in

        lines = await client.login()
        after = caps(lines[-1])
        assert {"UIDPLUS", "MOVE", "IDLE", "QUOTA", "SPECIAL-USE"} <= after
        assert "STARTTLS" not in after and "AUTH=PLAIN" not in after
        assert any(name.startswith("APPENDLIMIT=") for name in after)

        lines = await client.ok("CAPABILITY")
        assert caps(lines[0].replace(b"* CAPABILITY", b"CAPABILITY")) == after


async def test_passwords_refused_in_the_clear_from_another_machine(
    mail: MailRig,
) -> None:
    async with imap_rig(mail) as rig:
        rig.services.loopback_is_secure = False
        client = await rig.client()
        assert "LOGINDISABLED" in caps(client.greeting)
        assert "AUTH=PLAIN" not in caps(client.greeting)

        lines = await client.command(f'LOGIN {ANN} "{PASSWORD}"')
        assert (
            lines[-1]
            == b"t1 NO [PRIVACYREQUIRED] Sign in over TLS first (STARTTLS)\r\n"
        )
        lines = await client.command("AUTHENTICATE PLAIN")
        assert b"NO [PRIVACYREQUIRED]" in lines[-1]

        await client.ok("STARTTLS")
        await client.writer.start_tls(client_tls())
        lines = await client.ok("CAPABILITY")
        assert "AUTH=PLAIN" in caps(lines[0].replace(b"* CAPABILITY", b"CAPABILITY"))
        assert "STARTTLS" not in caps(lines[0].replace(b"* CAPABILITY", b"CAPABILITY"))
        await client.login()


async def test_commands_pipelined_after_starttls_are_dropped(mail: MailRig) -> None:
    """Bytes sent in the clear after STARTTLS must not run under TLS
    (the STARTTLS command injection of CVE-2011-0411's kind)."""
    async with imap_rig(mail) as rig:
        client = await rig.client()
        await client.send(b"t1 STARTTLS\r\nt2 LOGIN ann@example.org x\r\n")
        assert await client.line() == b"t1 OK Begin TLS negotiation now\r\n"
        await client.writer.start_tls(client_tls())
        lines = await client.command("NOOP")
        assert lines == [b"t1 OK completed\r\n"]


async def test_login_failure_and_success(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        client = await rig.client()
        lines = await client.command(f"LOGIN {ANN} wrong")
        assert lines == [b"t1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"]
        lines = await client.command("SELECT INBOX")
        assert lines == [b"t2 BAD Sign in first (LOGIN or AUTHENTICATE)\r\n"]
        await client.login()
        lines = await client.command(f'LOGIN {ANN} "{PASSWORD}"')
        assert lines == [b"t4 BAD Not allowed now: already signed in\r\n"]


async def test_authenticate_plain_with_and_without_initial_response(
    mail: MailRig,
) -> None:
    token = base64.b64encode(f"\0{ANN}\0{PASSWORD}".encode()).decode()
    async with imap_rig(mail) as rig:
        first = await rig.client()
        lines = await first.ok(f"AUTHENTICATE PLAIN {token}")
        assert b"Logged in" in lines[-1]

        second = await rig.client()
        await second.send(b"a1 AUTHENTICATE PLAIN\r\n")
        assert await second.line() == b"+ \r\n"
        await second.send(token.encode() + b"\r\n")
        assert (await second.until("a1"))[-1].startswith(b"a1 OK [CAPABILITY")

        third = await rig.client()
        await third.send(b"a1 AUTHENTICATE PLAIN\r\n")
        assert await third.line() == b"+ \r\n"
        await third.send(b"*\r\n")
        assert await third.until("a1") == [b"a1 BAD Authentication cancelled\r\n"]

        other = base64.b64encode(f"bob@example.org\0{ANN}\0{PASSWORD}".encode())
        lines = await third.command(b"AUTHENTICATE PLAIN " + other)
        assert b"NO [AUTHZFAILED]" in lines[-1]
        lines = await third.command("AUTHENTICATE CRAM-MD5")
        assert lines[-1] == b"t2 NO [CANNOT] Unsupported mechanism; use PLAIN\r\n"


async def test_implicit_tls_port(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        client = await rig.client(tls=True)
        assert "STARTTLS" not in caps(client.greeting)
        await client.login()


async def test_unknown_and_malformed_commands_get_bad_and_the_session_goes_on(
    mail: MailRig,
) -> None:
    async with imap_rig(mail) as rig:
        client = await rig.client(login=ANN)
        lines = await client.command("FROB")
        assert lines[-1] == b"t2 BAD unknown command\r\n"
        lines = await client.command("FETCH")
        assert lines[-1].split(b" ")[:2] == [b"t3", b"BAD"]
        await client.ok("NOOP")


async def test_too_many_bad_commands_end_the_session(mail: MailRig) -> None:
    limits = SessionLimits(max_bad=3)
    async with imap_rig(mail, limits=limits) as rig:
        client = await rig.client()
        for _ in range(2):
            assert (await client.command("FROB"))[-1].startswith(b"t")
        await client.send(b"t9 FROB\r\n")
        assert (await client.line()).startswith(b"t9 BAD")
        assert await client.line() == b"* BYE Too many invalid commands\r\n"
        assert await client.line() == b""


async def test_connections_per_address_are_bounded_on_both_ports(
    mail: MailRig,
) -> None:
    limits = SessionLimits(max_per_address=2)
    async with imap_rig(mail, limits=limits) as rig:
        first = await rig.client(login=ANN)
        await rig.client(tls=True)
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port("imap"))
        assert (
            await reader.readline()
            == b"* BYE Too many connections from your address\r\n"
        )
        assert await reader.read() == b""
        writer.close()

        # A closed connection makes room, and the first session went on.
        await first.ok("NOOP")
        await first.close()
        for _ in range(250):  # the server sees the close soon after
            if rig.services.connections["127.0.0.1"] < 2:
                break
            await asyncio.sleep(0.02)
        third = await rig.client()
        assert (await third.command("NOOP"))[-1] == b"t1 OK completed\r\n"


async def test_tls_connections_count_before_their_handshake(mail: MailRig) -> None:
    limits = SessionLimits(max_per_address=2)
    async with imap_rig(mail, limits=limits) as rig:
        port = rig.port("imaps")
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for _ in range(250):  # both accepted, neither has said a word
            if rig.services.connections["127.0.0.1"] == 2:
                break
            await asyncio.sleep(0.02)

        # Over the limit: closed without a word, as TLS has not begun.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port("imap"))
        assert (
            await reader.readline()
            == b"* BYE Too many connections from your address\r\n"
        )
        writer.close()
        for _, silent_writer in silent:
            silent_writer.close()


async def test_silence_ends_the_session_with_bye(mail: MailRig) -> None:
    limits = SessionLimits(login_timeout=0.3, idle_timeout=0.6)
    async with imap_rig(mail, limits=limits) as rig:
        client = await rig.client()
        assert await client.line() == b"* BYE Autologout: idle for too long\r\n"
        signed_in = await rig.client(login=ANN)
        assert await signed_in.line() == b"* BYE Autologout: idle for too long\r\n"


async def test_select_and_examine(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        first = await rig.deliver(ANN, message(1))
        await rig.deliver(ANN, message(2))
        await mail.store.store_flags(
            (await mail.store.get_mailbox(rig.users[ANN], "INBOX")).id,
            [first],
            "add",
            ["\\Seen"],
        )
        box = await mail.store.get_mailbox(rig.users[ANN], "INBOX")
        client = await rig.client(login=ANN)
        lines = await client.command("SELECT INBOX")
        assert lines == [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded"
            b" $Junk $NotJunk $MDNSent $Phishing)\r\n",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft"
            b" $Forwarded $Junk $NotJunk $MDNSent $Phishing \\*)] Flags permitted\r\n",
            b"* 2 EXISTS\r\n",
            b"* 0 RECENT\r\n",
            b"* OK [UNSEEN 2] First unseen\r\n",
            b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % box.uidvalidity,
            b"* OK [UIDNEXT %d] Predicted next UID\r\n" % box.uidnext,
            b"t2 OK [READ-WRITE] SELECT completed\r\n",
        ]
        lines = await client.command("EXAMINE INBOX")
        assert b"* OK [PERMANENTFLAGS ()] Flags permitted\r\n" in lines
        assert lines[-1] == b"t3 OK [READ-ONLY] EXAMINE completed\r\n"

        lines = await client.command("SELECT Nowhere")
        assert lines[-1].startswith(b"t4 NO [NONEXISTENT]")
        lines = await client.command("NOOP")
        assert lines == [b"t5 OK completed\r\n"]
        lines = await client.command("CHECK")  # nothing selected after a failure
        assert lines[-1].startswith(b"t6 BAD No mailbox selected")


async def test_close_expunges_and_unselect_does_not(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        box = await mail.store.get_mailbox(rig.users[ANN], "INBOX")
        uids = [await rig.deliver(ANN, message(n)) for n in range(3)]
        await mail.store.store_flags(box.id, uids[:2], "add", ["\\Deleted"])
        client = await rig.client(login=ANN)

        await client.ok("SELECT INBOX")
        assert await client.command("UNSELECT") == [b"t3 OK completed\r\n"]
        assert len(await mail.store.uids(box.id)) == 3

        await client.ok("EXAMINE INBOX")
        await client.ok("CLOSE")  # read-only: CLOSE removes nothing
        assert len(await mail.store.uids(box.id)) == 3

        await client.ok("SELECT INBOX")
        assert await client.command("CLOSE") == [b"t7 OK completed\r\n"]
        assert await mail.store.uids(box.id) == [uids[2]]
        lines = await client.command("CLOSE")
        assert lines[-1].startswith(b"t8 BAD No mailbox selected")


async def test_noop_announces_delivery_flags_and_expunge(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        box = await mail.store.get_mailbox(rig.users[ANN], "INBOX")
        one = await rig.deliver(ANN, message(1))
        two = await rig.deliver(ANN, message(2))
        client = await rig.client(login=ANN)
        await client.ok("SELECT INBOX")

        await rig.deliver(ANN, message(3))
        await mail.store.store_flags(box.id, [two], "add", ["\\Flagged"])
        await mail.store.store_flags(box.id, [one], "add", ["\\Deleted"])
        await mail.store.expunge(box.id)
        lines = await client.command("NOOP")
        assert lines == [
            b"* 1 EXPUNGE\r\n",
            b"* 1 FETCH (UID %d FLAGS (\\Flagged))\r\n" % two,
            b"* 2 EXISTS\r\n",
            b"t3 OK completed\r\n",
        ]
        assert await client.command("NOOP") == [b"t4 OK completed\r\n"]


async def test_idle_sees_a_delivery_at_once(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        client = await rig.client(login=ANN)
        await client.ok("SELECT INBOX")
        await client.send(b"i1 IDLE\r\n")
        assert await client.line() == b"+ idling\r\n"

        await rig.deliver(ANN, message(1))
        assert await client.line(wait=1.0) == b"* 1 EXISTS\r\n"

        await client.send(b"DONE\r\n")
        assert await client.until("i1") == [b"i1 OK completed\r\n"]


async def test_idle_wants_done_and_keeps_alive(mail: MailRig) -> None:
    limits = SessionLimits(idle_keepalive=0.2)
    async with imap_rig(mail, limits=limits) as rig:
        client = await rig.client(login=ANN)
        await client.send(b"i1 IDLE\r\n")  # IDLE without a selected mailbox
        assert await client.line() == b"+ idling\r\n"
        assert await client.line(wait=2.0) == b"* OK Still here\r\n"
        await client.send(b"NOOP\r\n")
        assert await client.until("i1") == [b"i1 BAD Expected DONE to end IDLE\r\n"]
        await client.ok("NOOP")

        # A line too long ends IDLE the same way; the next command is one.
        await client.send(b"i2 IDLE\r\n")
        assert await client.line() == b"+ idling\r\n"
        await client.send(b"x" * 70_000 + b"\r\nk2 NOOP\r\n")
        assert await client.until("i2") == [b"i2 BAD Expected DONE to end IDLE\r\n"]
        assert (await client.until("k2"))[-1] == b"k2 OK completed\r\n"


async def test_deleting_the_selected_mailbox_elsewhere_ends_the_session(
    mail: MailRig,
) -> None:
    async with imap_rig(mail) as rig:
        await mail.store.create_mailbox(rig.users[ANN], "Work")
        client = await rig.client(login=ANN)
        await client.ok("SELECT Work")
        await mail.store.delete_mailbox(rig.users[ANN], "Work")
        await client.send(b"t9 NOOP\r\n")
        assert await client.line() == b"* BYE The selected mailbox was deleted\r\n"
        assert await client.line() == b""


async def test_id_enable_logout(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        client = await rig.client(login=ANN)
        lines = await client.command('ID ("name" "test\\"client" "version" NIL)')
        assert lines == [
            b'* ID ("name" "nubo" "version" "0.1.0")\r\n',
            b"t2 OK completed\r\n",
        ]
        lines = await client.command("ENABLE FROBNICATE")
        assert lines == [b"* ENABLED\r\n", b"t3 OK completed\r\n"]
        lines = await client.command("LOGOUT")
        assert lines == [b"* BYE nubo says goodbye\r\n", b"t4 OK completed\r\n"]
        assert await client.line() == b""


async def test_stop_says_bye_to_waiting_sessions(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        client = await rig.client(login=ANN)
        idler = await rig.client(login=ANN)
        await idler.ok("SELECT INBOX")
        await idler.send(b"i1 IDLE\r\n")
        assert await idler.line() == b"+ idling\r\n"
        for listener in rig.listeners.values():
            await listener.stop(1.0)
        assert await client.line() == b"* BYE Server shutting down\r\n"
        assert await idler.line() == b"* BYE Server shutting down\r\n"


async def test_literal_bounds_keep_the_session(mail: MailRig) -> None:
    limits = SessionLimits(parser=Limits(max_literal=100))
    async with imap_rig(mail, limits=limits) as rig:
        client = await rig.client()
        await client.send(b"a1 LOGIN {1000}\r\n")
        line = await client.line()
        assert line.startswith(b"a1 BAD") or line.startswith(b"a1 NO"), line
        await client.ok("NOOP")


async def test_the_realworld_nonsync_login_signs_in(mail: MailRig) -> None:
    """IMAP-01: LOGIN with two LITERAL+ literals, sent in one write."""
    async with imap_rig(mail) as rig:
        client = await rig.client()
        user, password = ANN.encode(), PASSWORD.encode()
        await client.send(
            b"a1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n"
            % (len(user), user, len(password), password)
        )
        assert (await client.until("a1"))[-1].startswith(b"a1 OK")


@pytest.mark.parametrize("tls", [False, True])
async def test_imaplib_signs_in_and_selects(mail: MailRig, tls: bool) -> None:
    import imaplib

    async with imap_rig(mail) as rig:
        port = rig.port("imaps" if tls else "imap")

        def session() -> tuple[str, list[bytes | None]]:
            client: imaplib.IMAP4
            if tls:
                client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls())
            else:
                client = imaplib.IMAP4("127.0.0.1", port)
                client.starttls(client_tls())
            client.login(ANN, PASSWORD)
            result = client.select("INBOX")
            client.logout()
            return result

        typ, data = await asyncio.to_thread(session)
        assert (typ, data) == ("OK", [b"0"])
