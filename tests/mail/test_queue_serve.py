"""The queue inside a real ``nubo serve``: kill -9, retries and bounces.

A queue of 100 messages survives ``kill -9`` of ``nubo serve``.

The queue is filled in the data folder first, then ``nubo serve`` (a real
subprocess, on the embedded default) starts delivering to a scripted MX,
which leaves the 31st message unanswered; the server is killed with
SIGKILL there, started again, and the MX must end with each of the 100
Message-IDs exactly once.

Mail submitted with smtplib to a remote MX that answers 451 then 250 is
delivered on the retry, once; mail it refuses with 550 comes back to the
sender's Inbox as a DSN.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email import message_from_bytes
from pathlib import Path

import pytest

from nubo.accounts import Accounts
from nubo.config import load
from nubo.mail.mailstore import Mailstore
from nubo.mail.queue import Outbound
from nubo.runtime import open_runtime
from tests.mail.queue_crash import crash_message
from tests.mail.scripted_mx import scripted_mx, wait_for
from tests.serve import NuboProcess, cheap_env

pytestmark = pytest.mark.slow

COUNT = 100


async def queued(env: dict[str, str], add: int = 0) -> int:
    """Enqueue ``add`` messages in the data folder; how many are queued."""
    config = load(environ=env)
    rt = await open_runtime(config)
    try:
        outbound = Outbound.for_runtime(rt)
        for n in range(add):
            await outbound.enqueue(
                "ann@example.org", [f"u{n}@remote.test"], crash_message(n)
            )
        return len(await outbound.list())
    finally:
        await rt.close()


def test_kill_9_of_nubo_serve_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    with scripted_mx(hold_after=30) as mx:
        env = cheap_env(
            tmp_path / "data",
            NUBO_MX_OVERRIDE=f"*={mx.address}",
            NUBO_QUEUE_CONCURRENCY="1",
            NUBO_HOSTNAME="mail.example.org",
            NUBO_LOG_LEVEL="warning",
        )
        assert asyncio.run(queued(env, COUNT)) == COUNT

        first = NuboProcess(env)
        first.start()
        try:
            wait_for(mx.held.is_set, timeout=60)
        finally:
            first.kill()  # SIGKILL, while the 31st message waits for its reply
        assert len(mx.delivered) == 30

        mx.hold_after = None
        mx.release()
        second = NuboProcess(env)
        second.start()
        try:
            wait_for(lambda: len(mx.delivered) >= COUNT, timeout=120)
        finally:
            assert second.stop() == 0
        assert asyncio.run(queued(env)) == 0

    per_id = mx.message_ids()
    assert sorted(per_id) == sorted(f"<{n}@crash.test>" for n in range(COUNT))
    assert set(per_id.values()) == {1}


# -- the queue's "Done when", end to end ---------------------------------------

PASSWORD = "correct horse battery"


async def add_sender(env: dict[str, str]) -> None:
    rt = await open_runtime(load(environ=env))
    try:
        accounts = Accounts(rt.db, rt.config)
        await accounts.add_domain("example.org")
        await accounts.add_user("ann@example.org", PASSWORD)
    finally:
        await rt.close()


async def inbox_of_ann(env: dict[str, str]) -> list[bytes]:
    rt = await open_runtime(load(environ=env), migrate=False)
    try:
        user = await Accounts(rt.db, rt.config).get_user("ann@example.org")
        store = Mailstore(rt.db, rt.blobs, rt.events)
        await store.ensure_mailboxes(user.id)
        box = await store.get_mailbox(user.id, "INBOX")
        rows = await store.messages(box.id, with_info=False)
        return [await store.read_message(row.blob_id) for row in rows]
    finally:
        await rt.close()


def submit(server: NuboProcess, recipient: str, subject: str) -> bytes:
    """Send a message from ann over submissions (implicit TLS) with smtplib."""
    message = (
        f"From: ann@example.org\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@example.org>\r\n\r\nHello.\r\n"
    ).encode()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    host, port = server.addresses["submissions"]
    with smtplib.SMTP_SSL(host, port, context=context, timeout=30) as client:
        client.login("ann@example.org", PASSWORD)
        client.sendmail("ann@example.org", [recipient], message)
    return message


def test_451_then_250_and_550_to_a_dsn_through_nubo_serve(tmp_path: Path) -> None:
    with scripted_mx(
        data=["451 4.3.0 greylisted, try again"],
        rcpt={"nobody@remote.test": ["550 5.1.1 no such user here"]},
    ) as mx:
        env = cheap_env(
            tmp_path / "data",
            NUBO_MX_OVERRIDE=f"*={mx.address}",
            NUBO_HOSTNAME="mail.example.org",
            NUBO_QUEUE_FIRST_RETRY="0.5",
            NUBO_QUEUE_POLL_INTERVAL="0.2",
            NUBO_LOG_LEVEL="warning",
        )
        asyncio.run(add_sender(env))
        server = NuboProcess(env)
        server.start()
        try:
            submit(server, "dana@remote.test", "greylisted")
            wait_for(lambda: mx.message_ids()["<greylisted@example.org>"] == 1)
            submit(server, "nobody@remote.test", "bounced")
            wait_for(lambda: bool(asyncio.run(inbox_of_ann(env))))
            assert asyncio.run(queued(env)) == 0
        finally:
            assert server.stop() == 0

    assert mx.message_ids() == {"<greylisted@example.org>": 1}
    [report] = asyncio.run(inbox_of_ann(env))
    parsed = message_from_bytes(report)
    assert parsed.get_content_type() == "multipart/report"
    status = parsed.get_payload()[1].get_payload()[1]  # type: ignore[index]
    assert status["Final-Recipient"] == "rfc822; nobody@remote.test"
    assert status["Action"] == "failed"
    assert status["Status"] == "5.1.1"
    assert status["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user here"
    header = parsed.get_payload()[2].get_payload()  # type: ignore[index]
    assert "Message-ID: <bounced@example.org>" in header
