"""Lockout: repeated failed sign-ins are slowed, then refused for a while.

Failures are counted for two subjects at each attempt, in ``auth_failures``:

- the **account**: ``account:<sha256 of the address>``. When the client's
  network signed in to the account successfully in the last ``known_for``
  (60 days, ``known_networks``), the attempt is counted on a counter of its
  own, ``account:<hash>@<network>``: an attacker elsewhere can neither lock
  the member out of their usual networks nor clear the evidence of an attack
  when the member's phone signs in from home. Unknown accounts are counted
  exactly like known ones, so a lock says nothing about existence. The
  address is stored hashed: people type passwords into the user name field.
- the **client network** (``network:192.0.2.0/24``, IPv6 /48), whatever the
  account. A network holds many people (a household, an office behind one
  NAT), so its threshold is ``network_factor`` (4) times the account's.

With the defaults (``lockout_threshold`` 5, ``lockout_max_seconds`` 900): the
first 4 failures of a subject cost nothing. The 5th sets a lock of 1 second,
and each further failure doubles it (2, 4, 8 … 512 s), up to 900 s from the
15th on. An attempt that arrives during a lock with at most ``max_wait``
(4 s) left waits it out, so a client retrying at once is slowed by 1, 2 and
4 seconds; with more left it is refused (``locked``) at once, without the
password being checked and without being counted, so a lock always expires
on time. A network is slowed from its 20th failure, with the same doubling.

Each attempt is counted *before* the password is checked, inside one write
transaction that also checks the lock; parallel attempts therefore cannot
slip many guesses through one open window. A success then deletes the
account's counter and takes back its one count from the network (a success
does not clear the network's other failures, or an attacker could clear them
by signing in to an account of their own). A counter is forgotten after
``forget_after`` without failures (a day, or twice ``lockout_max_seconds``
if that is longer).

Known gap: a misconfigured device retrying a stale password keeps its
network's counter high, and can lock out the other people of that network
for up to ``lockout_max_seconds`` at a time. Counting failures per (network,
account) towards the network lock only once would lift it, at the price of
letting a network try more accounts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.accounts.addresses import parse_address
from nubo.accounts.clock import Clock
from nubo.accounts.errors import InvalidAddress
from nubo.accounts.sql import upsert
from nubo.config import Config
from nubo.store.database import Database
from nubo.store.schema import auth_failures, known_networks

# 2 ** 62 seconds is past any cap; bounding the exponent avoids an overflow.
_MAX_DOUBLINGS = 62


@dataclass(frozen=True)
class LockoutPolicy:
    """The numbers of the lockout; see the module's docstring."""

    threshold: int = 5
    max_lock_seconds: float = 900.0
    network_factor: int = 4
    max_wait_seconds: float = 4.0
    forget_after: timedelta = timedelta(days=1)
    known_for: timedelta = timedelta(days=60)

    @classmethod
    def from_config(cls, config: Config) -> LockoutPolicy:
        max_lock = float(config.lockout_max_seconds)
        return cls(
            threshold=int(config.lockout_threshold),
            max_lock_seconds=max_lock,
            forget_after=max(timedelta(days=1), timedelta(seconds=2 * max_lock)),
        )

    @property
    def network_threshold(self) -> int:
        return self.threshold * self.network_factor

    def lock_seconds(self, failures: int, threshold: int) -> float:
        """How long a subject is locked after its ``failures``-th failure."""
        if failures < threshold:
            return 0.0
        doublings = min(failures - threshold, _MAX_DOUBLINGS)
        return min(self.max_lock_seconds, float(2**doublings))


@dataclass(frozen=True)
class Subject:
    """What failures are counted against, and after how many it locks."""

    key: str
    threshold: int


@dataclass(frozen=True)
class Counter:
    failures: int
    last_failure_at: datetime | None
    locked_until: datetime | None

    def remaining(self, now: datetime) -> float:
        """Seconds the lock still holds, 0 when not locked."""
        if self.locked_until is None:
            return 0.0
        return max(0.0, (self.locked_until - now).total_seconds())


@dataclass(frozen=True)
class Attempt:
    """An admitted attempt, already counted as a failure."""

    account: Subject
    network: Subject
    account_failures: int
    network_failures: int

    @property
    def over_threshold(self) -> bool:
        return (
            self.account_failures >= self.account.threshold
            or self.network_failures >= self.network.threshold
        )


def account_key(address: str) -> str:
    """The hashed key of the address someone tried to sign in as."""
    try:
        text = str(parse_address(address))
    except InvalidAddress:
        text = address.strip().lower()
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def subjects(
    policy: LockoutPolicy, address: str, network: str, known: bool
) -> tuple[Subject, Subject]:
    """The (account, network) subjects of an attempt; see the docstring."""
    key = "account:" + account_key(address)
    if known:
        key += "@" + network
    return (
        Subject(key, policy.threshold),
        Subject("network:" + network, policy.network_threshold),
    )


class Lockout:
    """Admits, counts and forgives sign-in attempts."""

    def __init__(self, db: Database, policy: LockoutPolicy, clock: Clock) -> None:
        self.db = db
        self.policy = policy
        self.clock = clock

    async def admit(self, account: Subject, network: Subject) -> Attempt | None:
        """Count an attempt and let it proceed, or None when it is refused.

        Waits out a lock that has at most ``max_wait_seconds`` left.
        """
        wait = await self._longest_lock(account, network)
        if wait > self.policy.max_wait_seconds:
            return None
        if wait > 0:
            await self.clock.sleep(wait)
        return await self._reserve(account, network)

    async def forgive(self, conn: AsyncConnection, attempt: Attempt) -> None:
        """The attempt succeeded: reset the account, un-count the network.

        Runs in the caller's transaction, which records the sign-in.
        """
        await conn.execute(
            delete(auth_failures).where(auth_failures.c.subject == attempt.account.key)
        )
        await self._uncount(conn, attempt.network)

    async def prune(self) -> int:
        """Delete counters past ``forget_after`` and stale known networks."""
        now = self.clock.now()
        stale = and_(
            auth_failures.c.last_failure_at < now - self.policy.forget_after,
            or_(
                auth_failures.c.locked_until.is_(None),
                auth_failures.c.locked_until < now,
            ),
        )
        old = known_networks.c.last_success_at < now - self.policy.known_for
        async with self.db.write() as conn:
            counters = await conn.execute(delete(auth_failures).where(stale))
            networks = await conn.execute(delete(known_networks).where(old))
        return int(counters.rowcount) + int(networks.rowcount)

    async def _longest_lock(self, *subjects: Subject) -> float:
        now = self.clock.now()
        keys = [subject.key for subject in subjects]
        async with self.db.read() as conn:
            query = select(auth_failures).where(auth_failures.c.subject.in_(keys))
            rows = (await conn.execute(query)).all()
        return max((self._counter(row, now).remaining(now) for row in rows), default=0)

    async def _reserve(self, account: Subject, network: Subject) -> Attempt | None:
        async with self.db.write() as conn:
            # Always account before network: one lock order, no deadlock.
            rows = [
                await self._lock_row(conn, subject, self.clock.now())
                for subject in (account, network)
            ]
            # The time is read once the rows are ours: waiting for them must
            # not leave the lock checked, or set, against a stale time.
            now = self.clock.now()
            counters = [self._counter(row, now) for row in rows]
            if any(counter.remaining(now) > 0 for counter in counters):
                return None  # another attempt took the window while we waited

            counts = []
            for subject, counter in zip((account, network), counters, strict=True):
                counts.append(await self._count(conn, subject, counter, now))
        return Attempt(account, network, counts[0], counts[1])

    async def _lock_row(
        self, conn: AsyncConnection, subject: Subject, now: datetime
    ) -> Any:
        """The subject's counter row, created if need be and locked."""
        create = (
            upsert(conn, auth_failures)
            .values(subject=subject.key, failures=0, last_failure_at=now)
            .on_conflict_do_nothing(index_elements=[auth_failures.c.subject])
        )
        await conn.execute(create)

        query = (
            select(auth_failures)
            .where(auth_failures.c.subject == subject.key)
            .with_for_update()
        )
        return (await conn.execute(query)).one()

    async def _count(
        self, conn: AsyncConnection, subject: Subject, counter: Counter, now: datetime
    ) -> int:
        failures = counter.failures + 1
        lock = self.policy.lock_seconds(failures, subject.threshold)
        locked_until = now + timedelta(seconds=lock) if lock else None
        await conn.execute(
            update(auth_failures)
            .where(auth_failures.c.subject == subject.key)
            .values(failures=failures, last_failure_at=now, locked_until=locked_until)
        )
        return failures

    async def _uncount(self, conn: AsyncConnection, subject: Subject) -> None:
        row = await self._lock_row(conn, subject, self.clock.now())
        counter = self._counter(row, self.clock.now())
        failures = max(0, counter.failures - 1)

        values: dict[str, Any] = {"failures": failures}
        if failures < subject.threshold:
            values["locked_until"] = None
        await conn.execute(
            update(auth_failures)
            .where(auth_failures.c.subject == subject.key)
            .values(**values)
        )

    def _counter(self, row: Any, now: datetime) -> Counter:
        """The row's counter, or a fresh one if its failures are forgotten."""
        counter = Counter(row.failures, row.last_failure_at, row.locked_until)
        last = counter.last_failure_at
        forgotten = last is not None and now - last > self.policy.forget_after
        if forgotten and counter.remaining(now) == 0:
            return Counter(0, None, None)
        return counter


async def remember_network(
    conn: AsyncConnection, user_id: int, network: str, now: datetime
) -> None:
    """Record that ``network`` signed in to the user: it now has its own counter."""
    query = (
        upsert(conn, known_networks)
        .values(user_id=user_id, network=network, last_success_at=now)
        .on_conflict_do_update(
            index_elements=[known_networks.c.user_id, known_networks.c.network],
            set_={"last_success_at": now},
        )
    )
    await conn.execute(query)
