"""Lockout: slows, then refuses; expires; per account and per network; and an
attacker elsewhere cannot lock a member out of their usual networks.

The clock is a ManualClock: waits the service asks for are recorded in
``clock.slept`` and move the time at once. With the default settings the
account threshold is 5 failures, the network's 20, and locks double from 1 s
up to 900 s.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from nubo.accounts import Accounts, AuthStatus, ManualClock
from nubo.accounts.lockout import LockoutPolicy, Subject
from nubo.store.schema import auth_failures

OK, FAILED, LOCKED = AuthStatus.OK, AuthStatus.FAILED, AuthStatus.LOCKED
HOME = "192.0.2.5"
PASSWORD = "correct horse"


async def attempt(
    accounts: Accounts, address: str, secret: str, client: str
) -> AuthStatus:
    return (await accounts.authenticate(address, secret, client)).status


async def fail(
    accounts: Accounts, address: str, client: str, times: int
) -> list[AuthStatus]:
    return [await attempt(accounts, address, "wrong", client) for _ in range(times)]


def test_the_lock_doubles_from_one_second_up_to_the_cap() -> None:
    policy = LockoutPolicy(threshold=5, max_lock_seconds=900)

    locks = [policy.lock_seconds(n, 5) for n in range(1, 17)]

    assert locks == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert policy.lock_seconds(10_000, 5) == 900
    assert policy.network_threshold == 20


async def test_failures_are_slowed_then_refused(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    assert await fail(accounts, alice, HOME, 5) == [FAILED] * 5
    assert clock.slept == []

    # Retrying at once: the 6th to 8th attempts wait out 1, 2 and 4 seconds.
    assert await fail(accounts, alice, HOME, 3) == [FAILED] * 3
    assert clock.slept == [1, 2, 4]

    # The 8th failure locked for 8 s: refused, even with the right password.
    assert await attempt(accounts, alice, PASSWORD, HOME) is LOCKED
    assert clock.slept == [1, 2, 4]


async def test_a_refused_attempt_is_not_checked_nor_counted(
    accounts: Accounts, alice: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fail(accounts, alice, HOME, 8)
    checked: list[str] = []

    async def verify(encoded: str, password: str) -> bool:
        checked.append(password)
        return False

    monkeypatch.setattr(accounts.passwords, "verify", verify)
    assert await fail(accounts, alice, HOME, 50) == [LOCKED] * 50
    assert checked == []

    clock.advance(8)  # the lock of the 8th failure, not made longer by the 50
    monkeypatch.undo()
    assert await attempt(accounts, alice, PASSWORD, HOME) is OK


async def test_locks_expire_and_grow_up_to_the_cap(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    for _ in range(19):
        clock.advance(900)  # past any lock
        assert await attempt(accounts, alice, "wrong", HOME) is FAILED

    # 19 failures: locked for the cap, 900 s, and no longer; the last 4 s of
    # a lock are waited out rather than refused.
    clock.advance(890)
    assert await attempt(accounts, alice, PASSWORD, HOME) is LOCKED
    clock.advance(7)
    assert await attempt(accounts, alice, PASSWORD, HOME) is OK
    assert clock.slept == [3]


async def test_a_success_resets_the_account_counter(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    await fail(accounts, alice, HOME, 4)
    assert await attempt(accounts, alice, PASSWORD, HOME) is OK

    assert await fail(accounts, alice, HOME, 4) == [FAILED] * 4
    assert clock.slept == []
    assert await attempt(accounts, alice, PASSWORD, HOME) is OK


async def test_failures_are_forgotten_after_a_quiet_day(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    await fail(accounts, alice, HOME, 5)
    clock.advance(timedelta(days=1, seconds=1).total_seconds())

    assert await fail(accounts, alice, HOME, 4) == [FAILED] * 4
    assert clock.slept == []


async def test_unknown_accounts_lock_exactly_like_known_ones(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    known = await fail(accounts, alice, "198.51.100.1", 12)
    known_waits = list(clock.slept)
    clock.slept.clear()

    unknown = await fail(accounts, "ghost@example.org", "203.0.113.1", 12)

    assert unknown == known == [FAILED] * 8 + [LOCKED] * 4
    assert clock.slept == known_waits == [1, 2, 4]


async def test_a_network_trying_many_accounts_is_slowed_then_refused(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    attacker = "203.0.113.9"
    statuses = [
        await attempt(accounts, f"user{n}@example.org", "guess", attacker)
        for n in range(24)
    ]

    assert statuses == [FAILED] * 23 + [LOCKED]
    assert clock.slept == [1, 2, 4]  # from the network's 21st attempt
    # The whole /24 is refused, even for a right password; others are not.
    assert await attempt(accounts, alice, PASSWORD, "203.0.113.200") is LOCKED
    assert await attempt(accounts, alice, PASSWORD, HOME) is OK


async def test_an_attacker_elsewhere_cannot_lock_a_member_out_of_home(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    assert await attempt(accounts, alice, PASSWORD, HOME) is OK  # home is known

    # An attacker spread over many networks, each below its own threshold.
    for n in range(40):
        await attempt(accounts, alice, "guess", f"10.{n}.0.1")
        clock.advance(10)
    assert await attempt(accounts, alice, PASSWORD, "10.200.0.1") is LOCKED

    clock.slept.clear()
    assert await attempt(accounts, alice, PASSWORD, "192.0.2.99") is OK  # same /24
    assert clock.slept == []
    # The member signing in from home does not reset the attacker's lock.
    assert await attempt(accounts, alice, PASSWORD, "10.201.0.1") is LOCKED


async def test_failures_from_a_known_network_have_their_own_counter(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    assert await attempt(accounts, alice, PASSWORD, HOME) is OK

    # A stale device at home locks home only, not the member elsewhere.
    assert await fail(accounts, alice, HOME, 9) == [FAILED] * 8 + [LOCKED]
    assert await attempt(accounts, alice, PASSWORD, "198.51.100.7") is OK


async def test_parallel_guesses_cannot_share_one_open_window(
    accounts: Accounts, alice: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fail(accounts, alice, HOME, 4)
    lockout = accounts.lockout
    checked: list[str] = []
    counted: dict[int, datetime] = {}  # the account's nth failure: when
    real_verify, real_count = accounts.passwords.verify, lockout._count

    async def verify(encoded: str, password: str) -> bool:
        checked.append(password)
        return await real_verify(encoded, password)

    async def count(conn: Any, subject: Subject, counter: Any, now: datetime) -> int:
        failures = await real_count(conn, subject, counter, now)
        if subject.key.startswith("account:"):
            counted[failures] = now
        return failures

    monkeypatch.setattr(accounts.passwords, "verify", verify)
    monkeypatch.setattr(lockout, "_count", count)
    guesses = [attempt(accounts, alice, f"guess {n}", HOME) for n in range(10)]
    statuses = await asyncio.gather(*guesses)

    # The 5th failure locks at once for 1 s. A guess that read the lock
    # before it was set is refused; one that read it after waits it out and
    # may be the 6th (locking 2 s), and so on: which happens depends on
    # scheduling, but each guess checked was counted once, in a window of
    # its own.
    assert statuses.count(FAILED) == len(checked) == len(counted) >= 1
    assert statuses.count(LOCKED) == 10 - len(checked)
    assert sorted(counted) == list(range(5, 5 + len(counted)))
    for nth in sorted(counted)[1:]:
        gap = (counted[nth] - counted[nth - 1]).total_seconds()
        assert gap >= lockout.policy.lock_seconds(nth - 1, 5)


async def test_parallel_correct_sign_ins_do_not_lock_the_account(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    # A mail client opening ten connections at once with the right password:
    # each attempt is counted before its check, so in parallel the fifth
    # would lock the account against the other five.
    sign_ins = [attempt(accounts, alice, PASSWORD, HOME) for _ in range(10)]

    assert await asyncio.gather(*sign_ins) == [OK] * 10
    assert clock.slept == []
    assert await fail(accounts, alice, HOME, 4) == [FAILED] * 4
    assert clock.slept == []


async def test_parallel_waits_overlap_on_the_manual_clock(clock: ManualClock) -> None:
    start = clock.now()

    await asyncio.gather(*(clock.sleep(1) for _ in range(10)))

    assert (clock.now() - start).total_seconds() == 1
    assert clock.slept == [1] * 10


async def test_prune_forgets_old_counters(
    accounts: Accounts, alice: str, clock: ManualClock
) -> None:
    await fail(accounts, alice, HOME, 2)
    assert await accounts.prune() == 0

    clock.advance(timedelta(days=2).total_seconds())
    assert await accounts.prune() == 2  # the account's and the network's

    async with accounts.db.read() as conn:
        left = (
            await conn.execute(select(func.count()).select_from(auth_failures))
        ).scalar_one()
    assert left == 0
