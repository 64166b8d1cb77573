"""IMAP against real ``nubo serve`` subprocesses: a message delivered over
SMTP reaches a client idling in IMAP, in the same process and, over one
PostgreSQL, in another process (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mail.imap.imap_rig import Client
from tests.serve import NuboProcess, cheap_env, nubo_ok
from tests.test_server_shared import SharedStore, shared  # noqa: F401 (fixture)

PASSWORD = "correct horse battery"
ANN = "ann@example.org"
MESSAGE = (
    b"From: Dana <dana@remote.test>\r\nTo: ann@example.org\r\n"
    b"Subject: idle test\r\nMessage-ID: <idle@remote.test>\r\n\r\nHello Ann\r\n"
)


def nubo_cli(env: dict[str, str], *argv: str) -> None:
    nubo_ok(env, *argv, stdin=PASSWORD + "\n")


def mail_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "NUBO_HOSTNAME": "mx.example.org", "NUBO_SMTP_VERIFY": "false"}


def send(server: NuboProcess) -> None:
    host, port = server.addresses["smtp"]
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.sendmail("dana@remote.test", [ANN], MESSAGE)


async def idle_until_delivered(idler: NuboProcess, sender: NuboProcess) -> float:
    """Seconds from the end of the SMTP transaction to ``* 1 EXISTS``."""
    client = await Client.connect(idler.addresses["imap"][1])
    try:
        await client.login(ANN)
        await client.ok("SELECT INBOX")
        await client.send(b"i1 IDLE\r\n")
        assert await client.line() == b"+ idling\r\n"

        await asyncio.to_thread(send, sender)
        sent = time.monotonic()
        assert await client.line(wait=10.0) == b"* 1 EXISTS\r\n"
        latency = time.monotonic() - sent

        await client.send(b"DONE\r\n")
        assert await client.until("i1") == [b"i1 OK completed\r\n"]
        lines = await client.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: idle test" in lines[0]
        return latency
    finally:
        await client.close()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[NuboProcess]:
    env = mail_env(cheap_env(tmp_path / "data"))
    nubo_cli(env, "domain", "add", "example.org")
    nubo_cli(env, "user", "add", ANN)
    server = NuboProcess(env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_smtp_delivery_reaches_an_idling_client(embedded: NuboProcess) -> None:
    latency = asyncio.run(idle_until_delivered(embedded, embedded))
    print(f"SMTP end to IDLE EXISTS: {latency * 1000:.1f} ms")


@pytest.mark.scale
def test_another_process_on_postgresql_sees_the_delivery_in_idle(
    shared: SharedStore,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    first_env = mail_env(shared.nubo_env(tmp_path / "one"))
    second_env = mail_env(shared.nubo_env(tmp_path / "two"))
    first, second = NuboProcess(first_env), NuboProcess(second_env)
    first.start(timeout=60)
    try:
        nubo_cli(first_env, "domain", "add", "example.org")
        nubo_cli(first_env, "user", "add", ANN)
        second.start(timeout=60)
        try:
            latency = asyncio.run(idle_until_delivered(second, first))
            print(f"SMTP on one process to IDLE on another: {latency * 1000:.1f} ms")
        finally:
            second.stop()
    finally:
        first.stop()
