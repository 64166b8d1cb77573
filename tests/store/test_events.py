"""Events: in-process and across processes through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio

import pytest

from nubo.config import load
from nubo.store.database import Database
from nubo.store.events import (
    QUEUE_SIZE,
    Event,
    EventError,
    LocalBus,
    PostgresBus,
    open_events,
)


async def test_subscriber_gets_only_its_topics(database: Database) -> None:
    bus = await open_events(load(environ={}), database)
    try:
        with bus.subscribe("mailbox:1", "mailbox:2") as sub:
            await bus.publish("mailbox:3", {"uid": 9})
            await bus.publish("mailbox:2", {"uid": 7})
            await bus.publish("mailbox:1")

            first = await asyncio.wait_for(sub.get(), 5)
            second = await asyncio.wait_for(sub.get(), 5)

        assert first == Event("mailbox:2", {"uid": 7})
        assert second == Event("mailbox:1", {})
        assert sub.get_nowait() is None
    finally:
        await bus.close()


async def test_closed_subscription_receives_nothing(database: Database) -> None:
    bus = await open_events(load(environ={}), database)
    try:
        sub = bus.subscribe("t")
        other = bus.subscribe("t")
        sub.close()
        await bus.publish("t")

        assert await asyncio.wait_for(other.get(), 5) == Event("t")
        assert sub.get_nowait() is None
    finally:
        await bus.close()


async def test_slow_subscriber_is_told_it_lost_events() -> None:
    bus = LocalBus()
    sub = bus.subscribe("t")
    for n in range(QUEUE_SIZE + 10):
        await bus.publish("t", {"n": n})

    lost = sub.get_nowait()
    assert lost is not None and lost.lost
    assert sub.get_nowait() is None

    await bus.publish("t", {"n": -1})
    assert sub.get_nowait() == Event("t", {"n": -1})


async def test_oversized_payload_refused() -> None:
    bus = LocalBus()
    with pytest.raises(EventError, match="too large"):
        await bus.publish("t", {"x": "a" * 9000})


async def test_second_process_sees_events(database: Database) -> None:
    """Two buses on one PostgreSQL stand for two ``nubo serve`` processes."""
    if database.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is the PostgreSQL bus; SQLite is one process")

    first = await open_events(load(environ={}), database)
    second = await open_events(load(environ={}), database)
    assert isinstance(second, PostgresBus)
    try:
        with second.subscribe("mailbox:5") as sub:
            await first.publish("mailbox:5", {"uid": 1})
            got = await asyncio.wait_for(sub.get(), 5)
        assert got == Event("mailbox:5", {"uid": 1})
    finally:
        await first.close()
        await second.close()


async def test_lost_listener_reconnects_and_says_so(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("only the PostgreSQL bus has a connection to lose")

    bus = await open_events(load(environ={}), database)
    assert isinstance(bus, PostgresBus)
    try:
        with bus.subscribe("t") as sub:
            assert bus._listener is not None
            pid = bus._listener.get_server_pid()
            async with database.write() as conn:
                from sqlalchemy import func, select

                await conn.execute(select(func.pg_terminate_backend(pid)))

            lost = await asyncio.wait_for(sub.get(), 10)
            assert lost.lost

            await bus.publish("t", {"after": True})
            assert await asyncio.wait_for(sub.get(), 5) == Event("t", {"after": True})
    finally:
        await bus.close()
