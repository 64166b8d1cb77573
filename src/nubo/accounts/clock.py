"""The time source of the accounts service, replaceable in tests.

Lockouts depend on time passing: a test moves a ``ManualClock`` forward
instead of sleeping, and sees every wait the service asked for.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol

from nubo.store.schema import utcnow


class Clock(Protocol):
    """Tells the time and waits."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` before going on."""
        ...


class SystemClock:
    """The real time and real waits."""

    def now(self) -> datetime:
        return utcnow()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to; sleeping moves it at once."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or utcnow()
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        # Waits that run at the same time overlap, as real ones do: ten tasks
        # each waiting 1 s move the clock by 1 s, not 10 (adding them up
        # once let parallel sign-in attempts past locks that never expired).
        self.slept.append(seconds)
        wake = self.current + timedelta(seconds=seconds)
        await asyncio.sleep(0)  # still let other tasks run, as a real wait would
        self.current = max(self.current, wake)
