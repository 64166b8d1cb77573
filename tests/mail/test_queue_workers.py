"""The queue's workers: several at once never send a recipient twice, a
killed process loses nothing, and a stop gives its leases back.

On both storage pairs; on PostgreSQL the two-worker test runs two Outbound
instances with their own engines (their own connections), which is what two
processes do to the database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from nubo.accounts import Accounts, ManualClock
from nubo.config import Config
from nubo.mail.dns import Resolver
from nubo.mail.mailstore import Mailstore
from nubo.mail.queue import Outbound
from nubo.mail.queue.model import Leased
from nubo.mail.queue.outbound import LEASE_SECONDS
from nubo.store.blobs import open_blobs
from nubo.store.database import Database
from nubo.store.events import LocalBus
from nubo.store.schema import queue_recipients
from tests.mail.mailstore_rig import MailRig
from tests.mail.queue_rig import make_outbound, message, queue_rows
from tests.mail.scripted_mx import scripted_mx

CRASH = Path(__file__).with_name("queue_crash.py")


async def until(check: Callable[[], object], within: float = 60.0) -> None:
    """Wait until ``check()`` (a value or a coroutine) is true."""
    async with asyncio.timeout(within):
        # Polling: the state is another thread's (the MX) or the store's.
        while not await _value(check()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _value(result: object) -> bool:
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)


async def second_outbound(config: Config) -> tuple[Outbound, Database]:
    """An Outbound with its own engine and bus, as another process has."""
    db = Database(config.effective_database_url)
    blobs = open_blobs(config, db)
    bus = LocalBus()
    outbound = Outbound(
        config,
        db,
        blobs,
        bus,
        Mailstore(db, blobs, bus),
        Accounts(db, config),
        Resolver.from_config(config),
    )
    return outbound, db


def count_leases(outbound: Outbound) -> Counter[str]:
    """Count the rows each lease call hands ``outbound``."""
    counts: Counter[str] = Counter()
    lease = outbound.store.lease

    async def counting(*args: object, **kwargs: object) -> list[Leased]:
        rows = await lease(*args, **kwargs)  # type: ignore[arg-type]
        counts["rows"] += len(rows)
        return rows

    outbound.store.lease = counting  # type: ignore[method-assign]
    return counts


async def test_two_workers_deliver_each_recipient_exactly_once(mail: MailRig) -> None:
    # The first worker delivers two domains at a time, slowly enough that
    # the second always finds domains left to lease, even on a busy machine.
    with scripted_mx(delay=0.05) as mx:
        first = make_outbound(mail, mx, queue_concurrency=2)
        second, second_db = await second_outbound(first.config)
        leased = [count_leases(first), count_leases(second)]
        try:
            await first.start()
            await second.start()
            ids = [
                await first.enqueue(
                    "ann@example.org",
                    [f"u{n}@d{n % 7}.test", f"v{n}@d{n % 7}.test"],
                    message(n),
                )
                for n in range(100)
            ]
            await until(_empty(mail))
        finally:
            await first.stop(5)
            await second.stop(5)
            await second_db.close()

    assert len(ids) == 100
    # A message's two recipients may go in two transactions (two workers
    # leased one each); each recipient gets it once.
    received = Counter(
        (d.message_id, rcpt) for d in mx.delivered for rcpt in d.rcpt_tos
    )
    assert len(received) == 200 and set(received.values()) == {1}
    assert len({message_id for message_id, _rcpt in received}) == 100
    assert all(count["rows"] > 0 for count in leased)


def _empty(rig: MailRig) -> object:
    async def check() -> bool:
        return await queue_rows(rig) == (0, 0)

    return check


@pytest.mark.slow
async def test_kill_9_mid_delivery_loses_nothing_and_sends_nothing_twice(
    mail: MailRig,
) -> None:
    with scripted_mx(hold_after=30) as mx:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUBO_")}
        env.update(mail.env)
        env.update(
            NUBO_MX_OVERRIDE=f"*={mx.address}",
            NUBO_QUEUE_CONCURRENCY="1",
            NUBO_HOSTNAME="mail.example.org",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CRASH),
            "100",
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line == b"enqueued\n"
            await until(mx.held.is_set)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert len(mx.delivered) == 30

        # The restart: on SQLite it takes back the dead run's leases at
        # start; on PostgreSQL another process waits until they expire,
        # which this clock, set past the lease, stands for.
        mx.hold_after = None
        later = datetime.now().astimezone() + timedelta(seconds=LEASE_SECONDS + 1)
        restarted = make_outbound(mail, mx, ManualClock(later))
        await restarted.start()
        try:
            await until(_empty(mail), within=120)
        finally:
            await restarted.stop(5)

    per_id = mx.message_ids()
    assert sorted(per_id) == sorted(f"<{n}@crash.test>" for n in range(100))
    assert set(per_id.values()) == {1}


async def test_stop_gives_back_the_leases_of_what_was_not_sent(mail: MailRig) -> None:
    with scripted_mx(hold_after=0) as mx:
        outbound = make_outbound(mail, mx)
        await outbound.start()
        for n in range(3):
            await outbound.enqueue("ann@example.org", [f"u{n}@remote.test"], message(n))
        await until(mx.held.is_set)
        await outbound.stop(0.2)

    assert mx.delivered == []
    async with mail.db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    queue_recipients.c.state,
                    queue_recipients.c.lease_owner,
                    queue_recipients.c.attempts,
                )
            )
        ).all()
    assert [(r.state, r.lease_owner, r.attempts) for r in rows] == [
        ("queued", None, 0)
    ] * 3


async def test_start_wakes_on_enqueue_and_stop_is_clean(mail: MailRig) -> None:
    with scripted_mx() as mx:
        # A long poll interval: only the wake-up can make this quick.
        outbound = make_outbound(mail, mx, queue_poll_interval=3600.0)
        await outbound.start()
        try:
            await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
            await until(lambda: len(mx.delivered) == 1, within=20)
        finally:
            await outbound.stop(1)
    assert await queue_rows(mail) == (0, 0)


async def test_a_delivery_that_outlasts_its_lease_is_cut_and_counted(
    mail: MailRig,
) -> None:
    # The MX never answers DATA; the lease is one second, so each message
    # is cut at nine tenths of it: counted as a failed attempt, while the
    # message not yet begun is given back uncounted (and then tried).
    with scripted_mx(hold_after=0) as mx:
        outbound = make_outbound(mail, mx, lease_seconds=1.0)
        for n in range(2):
            await outbound.enqueue("ann@example.org", [f"u{n}@remote.test"], message(n))
        assert await outbound.run_once() == 2

    entries = await outbound.list()
    assert [(e.attempts, e.last_reply) for e in entries] == [
        (1, "4.4.2 delivery took too long; cut")
    ] * 2
    async with mail.db.read() as conn:
        owners = (await conn.execute(select(queue_recipients.c.lease_owner))).all()
    assert owners == [(None,), (None,)]
