"""SMTP against a real ``nubo serve`` subprocess, driven by swaks and smtplib.

The world: ``nubo serve`` on free ports hosting example.org (ann, bob, and
carol with a 3000-byte quota), a remote MX on loopback (``ScriptedMX``)
that every outgoing message reaches through ``mx_override``, and a loopback
DNS server publishing what ``nubo domain dns example.org`` printed, so that
the DKIM signature of a sent message verifies with dkimpy as a receiver
would check it. The swaks tests need Debian's ``swaks``: without it they are
skipped locally with a message and fail in CI (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim as dkimpy  # type: ignore[import-untyped]
import dns.resolver
import pytest
from sqlalchemy import select

from nubo.config import load
from nubo.mail.mailstore import Mailstore, MailstoreError
from nubo.store.blobs import open_blobs
from nubo.store.database import Database
from nubo.store.events import LocalBus
from nubo.store.schema import users
from tests.conftest import scale_unavailable
from tests.mail.dnsserver import serve_dns
from tests.mail.scripted_mx import ScriptedMX, scripted_mx, wait_for
from tests.mail.test_cli_domain_dns import parse_zone, zone_to_records
from tests.serve import NuboProcess, cheap_env, run_nubo

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
ANN, BOB, CAROL = "ann@example.org", "bob@example.org", "carol@example.org"
MAX_SIZE = 100_000
MAIL01 = Path(__file__).parent / "mail01_smtp_smuggling_data.bin"


@dataclass
class World:
    server: NuboProcess
    mx: ScriptedMX
    env: dict[str, str]
    dns: str  # "127.0.0.1:port"

    def port(self, name: str) -> int:
        return self.server.addresses[name][1]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("serve") / "data"
    records: dict[str, Any] = {}
    with scripted_mx() as mx, serve_dns(records) as servers:
        env = cheap_env(
            data,
            NUBO_HOSTNAME="mx.example.org",
            NUBO_MX_OVERRIDE=f"*={mx.address}",
            NUBO_DNS_SERVERS=servers,
            NUBO_MAX_MESSAGE_SIZE=str(MAX_SIZE),
            NUBO_QUEUE_POLL_INTERVAL="0.2",
        )
        for argv in [
            ("domain", "add", "example.org"),
            ("user", "add", ANN),
            ("user", "add", BOB),
            ("user", "add", CAROL, "--quota", "3000"),
        ]:
            done = nubo_cli(env, *argv)
            assert done.returncode == 0, done.stderr
        # What the operator would publish, served to whoever verifies.
        zone = nubo_cli(env, "domain", "dns", "example.org")
        assert zone.returncode == 0, zone.stderr
        records.update(zone_to_records(parse_zone(zone.stdout)))

        server = NuboProcess(env)
        server.start()
        try:
            yield World(server, mx, env, servers)
        finally:
            server.stop()


def nubo_cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """``nubo`` with the world's settings, a password on standard input."""
    return run_nubo(env, *argv, stdin=PASSWORD + "\n")


def lines(size: int) -> str:
    """A body of at least ``size`` octets in lines of 70."""
    return "\n".join(["z" * 70] * (size // 70 + 1))


def swaks(*argv: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("swaks") is None:
        scale_unavailable("swaks", "apt-get install swaks")
    return subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--timeout", "30", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def mailbox(world: World, address: str, special: str | None = None) -> list[bytes]:
    """The messages of a user's Inbox (or special mailbox), read from the
    store the server uses."""

    async def read() -> list[bytes]:
        config = load(environ=world.env)
        db = Database(config.effective_database_url)
        blobs = open_blobs(config, db)
        store = Mailstore(db, blobs, LocalBus())
        try:
            user_id = await _user_id(db, address)
            box = (
                await store.special_mailbox(user_id, special)
                if special
                else await store.get_mailbox(user_id, "INBOX")
            )
            rows = await store.messages(box.id, with_info=False)
            return [await store.read_message(row.blob_id) for row in rows]
        finally:
            await blobs.close()
            await db.close()

    return asyncio.run(read())


async def _user_id(db: Database, address: str) -> int:
    async with db.read() as conn:
        query = select(users.c.id).where(users.c.address == address)
        return int((await conn.execute(query)).scalar_one())


def wait_for_mail(world: World, address: str, count: int, **kwargs: Any) -> list[bytes]:
    deadline = time.monotonic() + 30
    while True:
        try:
            found = mailbox(world, address, **kwargs)
        except MailstoreError:  # the mailbox is made with the first message
            found = []
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def dkim_verifies(world: World, message: bytes) -> bool:
    """dkimpy's verdict, the key fetched from the loopback DNS server."""
    host, port = world.dns.rsplit(":", 1)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode(), "TXT")
        return b"".join(b"".join(r.strings) for r in answer)

    return bool(dkimpy.verify(message, dnsfunc=lookup))


# -- the first "Done when": mail goes where it should -------------------------


def test_swaks_submission_reaches_a_local_inbox(world: World) -> None:
    done = swaks(
        "--port", str(world.port("submission")), "--tls",
        "--auth", "PLAIN", "--auth-user", ANN, "--auth-password", PASSWORD,
        "--from", ANN, "--to", BOB, "--header", "Subject: swaks to bob",
    )  # fmt: skip

    assert done.returncode == 0, done.stdout
    [received] = wait_for_mail(world, BOB, 1)
    assert b"Subject: swaks to bob" in received
    assert dkim_verifies(world, received)
    sent = wait_for_mail(world, ANN, 1, special="Sent")
    assert any(b"Subject: swaks to bob" in message for message in sent)


def test_smtplib_submission_reaches_the_remote_mx_signed(world: World) -> None:
    message = (
        f"From: Ann <{ANN}>\r\nTo: dana@remote.test\r\nSubject: to the world\r\n"
        "\r\nHello from nubo.\r\n"
    ).encode()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    with smtplib.SMTP_SSL(
        "127.0.0.1", world.port("submissions"), context=context, timeout=30
    ) as client:
        client.login(ANN, PASSWORD)
        client.sendmail(ANN, ["dana@remote.test"], message)

    wait_for(
        lambda: any(d.rcpt_tos == ("dana@remote.test",) for d in world.mx.delivered)
    )
    [got] = [d for d in world.mx.delivered if d.rcpt_tos == ("dana@remote.test",)]
    assert got.mail_from == ANN
    assert got.data.endswith(message)
    assert dkim_verifies(world, got.data)
    sent = wait_for_mail(world, ANN, 1, special="Sent")
    assert got.data in sent


def test_swaks_over_the_mx_reaches_the_inbox(world: World) -> None:
    done = swaks(
        "--port", str(world.port("smtp")), "--from", "dana@remote.test",
        "--to", "carol+tag@example.org", "--header", "Subject: from outside",
    )  # fmt: skip

    assert done.returncode == 0, done.stdout
    [received] = wait_for_mail(world, CAROL, 1)
    assert received.startswith(b"Return-Path: <dana@remote.test>\r\nReceived: ")
    assert b"Authentication-Results: mx.example.org;" in received


# -- the second "Done when": each refusal with its reply code ------------------


@pytest.mark.parametrize(
    ("port", "argv", "expected"),
    [
        ("smtp", ["--from", "x@remote.test", "--to", "y@elsewhere.test"], "550 5.7.1"),
        (
            "smtp",
            ["--from", "x@remote.test", "--to", "nobody@example.org"],
            "550 5.1.1",
        ),
        (
            "submission",
            ["--tls", "--auth", "PLAIN", "--auth-user", ANN,
             "--auth-password", PASSWORD, "--from", BOB, "--to", BOB],
            "553 5.7.1",
        ),
        (
            "submission",
            ["--tls", "--auth", "PLAIN", "--auth-user", ANN,
             "--auth-password", PASSWORD, "--from", ANN, "--to", BOB,
             "--header", f"From: {BOB}"],
            "553 5.7.1",
        ),
        (
            "submission",
            ["--tls", "--auth", "PLAIN", "--auth-user", ANN,
             "--auth-password", "wrong", "--from", ANN, "--to", BOB],
            "535 5.7.8",
        ),
        (
            "smtp",
            ["--from", "x@remote.test", "--to", CAROL, "--body", lines(4000)],
            "552 5.2.2",
        ),
        (
            "smtp",
            ["--from", "x@remote.test", "--to", BOB, "--body", lines(MAX_SIZE)],
            "552 5.3.4",
        ),
    ],
    ids=[
        "relay", "unknown-user", "spoofed-sender", "spoofed-from", "bad-password",
        "over-quota", "oversized",
    ],
)  # fmt: skip
def test_refusals_with_swaks(
    world: World, port: str, argv: list[str], expected: str
) -> None:
    done = swaks("--port", str(world.port(port)), *argv)

    assert done.returncode != 0
    # swaks marks an error reply "<**", or "<~*" inside TLS.
    assert re.search(rf"^<[*~]\* {expected} ", done.stdout, re.M), done.stdout[-3000:]


class Line:
    """A plain socket SMTP client for the byte-exact refusals."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        assert self.reply().startswith("220 ")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            lines.append(line)
            if line[3:4] != "-":
                return "\n".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> str:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.mark.parametrize(
    "variant",
    [b"hello\n.\r\n", b"hello\n.\n", b"hello\r.\r\n", b"hello\r\n.\n"],
    ids=["LF.CRLF", "LF.LF", "CR.CRLF", "CRLF.LF"],
)
def test_smuggling_refused(world: World, variant: bytes) -> None:
    """MAIL-01 over the socket, in one write: one reply, nothing stored."""
    before = len(mailbox(world, BOB))
    client = Line(world.port("smtp"))
    client.command("EHLO client.example.net")
    assert client.command("MAIL FROM:<dana@example.net>").startswith("250")
    assert client.command(f"RCPT TO:<{BOB}>").startswith("250")
    assert client.command("DATA").startswith("354")

    client.send(MAIL01.read_bytes().replace(b"hello\n.\r\n", variant))

    assert client.reply().startswith("554 5.6.0")
    assert client.command("NOOP") == "250 2.0.0 OK"
    client.close()
    assert len(mailbox(world, BOB)) == before


def test_starttls_injection_refused(world: World) -> None:
    client = Line(world.port("smtp"))
    client.command("EHLO client.example.net")
    client.send(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n")
    assert client.reply().startswith("220 ")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    tls = context.wrap_socket(client.sock, server_hostname="mx.example.org")
    client.sock, client.file = tls, tls.makefile("rb")

    assert client.command("EHLO client.example.net").startswith("250-mx.example.org")
    assert client.command("MAIL FROM:<dana@example.net>") == "250 2.1.0 Sender OK"
    client.close()


def test_auth_before_tls_refused_on_submission(world: World) -> None:
    client = Line(world.port("submission"))
    assert "AUTH" not in client.command("EHLO client.example.net")
    token = base64.b64encode(f"\0{ANN}\0{PASSWORD}".encode()).decode()

    assert client.command(f"AUTH PLAIN {token}").startswith("538 5.7.11")
    assert client.command(f"MAIL FROM:<{ANN}>").startswith("530 5.7.0")
    client.close()
