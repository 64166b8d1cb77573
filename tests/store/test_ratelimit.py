"""Fixed-window rate counters shared by processes, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from nubo.store.database import Database
from nubo.store.ratelimit import RateLimits

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_counts_up_to_the_limit_then_refuses(database: Database) -> None:
    limits = RateLimits(database)

    answers = [await limits.hit("submit:1", 3, 3600, T0) for _ in range(5)]

    assert answers == [True, True, True, False, False]
    assert await limits.count("submit:1", 3600, T0) == 3
    assert await limits.count("submit:2", 3600, T0) == 0


async def test_a_new_window_starts_after_the_old_one(database: Database) -> None:
    limits = RateLimits(database)
    for _ in range(2):
        await limits.hit("submit:1", 2, 3600, T0)
    assert not await limits.hit("submit:1", 2, 3600, T0 + timedelta(minutes=59))

    later = T0 + timedelta(hours=1, seconds=1)
    assert await limits.hit("submit:1", 2, 3600, later)
    assert await limits.count("submit:1", 3600, later) == 1


async def test_subjects_are_counted_apart(database: Database) -> None:
    limits = RateLimits(database)

    assert await limits.hit("submit:1", 1, 60, T0)
    assert await limits.hit("submit:2", 1, 60, T0)
    assert not await limits.hit("submit:1", 1, 60, T0)


async def test_concurrent_hits_never_pass_the_limit(database: Database) -> None:
    limits = RateLimits(database)

    answers = await asyncio.gather(
        *(limits.hit("submit:1", 10, 3600, T0) for _ in range(30))
    )

    assert answers.count(True) == 10
    assert await limits.count("submit:1", 3600, T0) == 10
