"""Wake-ups between sessions: a small publish/subscribe on named topics.

A service publishes after it commits a change ("mailbox 42 changed"); waiting
sessions (IMAP IDLE, DAV sync) subscribe to the topics they care about and
then re-read the store. An event says only that something changed, never
what: the store stays the truth, so a lost event costs a delay, not data.

Two buses share one interface:

- ``LocalBus``, in-process, for the embedded mode (one ``nubo serve``).
- ``PostgresBus``, PostgreSQL LISTEN/NOTIFY on one channel, for several
  processes sharing one PostgreSQL. Its own process's events come back through
  the same channel, so every subscriber sees one stream in one order.

A subscriber that falls behind by more than its queue holds, or whose bus lost
its connection, receives one ``Event`` with ``lost=True``: it must then
re-read everything it watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from nubo.config import Config
from nubo.store.database import Database

log = logging.getLogger(__name__)

CHANNEL = "nubo_events"
QUEUE_SIZE = 1024
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD = 7900
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


class EventError(Exception):
    """An event could not be published (too large or the bus is closed)."""


@dataclass(frozen=True)
class Event:
    topic: str
    data: dict[str, Any] = field(default_factory=dict)
    lost: bool = False


class Subscription:
    """Events for a set of topics, in the order they were published."""

    def __init__(self, bus: _Fanout, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._overflowed = False

    def _offer(self, event: Event) -> None:
        if self._overflowed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Drop the backlog: the subscriber re-reads the store anyway.
            self._overflowed = True
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(Event("", lost=True))

    async def get(self) -> Event:
        event = await self._queue.get()
        if event.lost:
            self._overflowed = False
        return event

    def get_nowait(self) -> Event | None:
        try:
            event = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if event.lost:
            self._overflowed = False
        return event

    def close(self) -> None:
        self._bus._unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EventBus(Protocol):
    async def publish(self, topic: str, data: dict[str, Any] | None = None) -> None:
        """Wake every subscriber of ``topic``, in this and other processes."""
        ...

    def subscribe(self, *topics: str) -> Subscription:
        """Start receiving events of these topics; close() the result."""
        ...

    async def close(self) -> None: ...


class _Fanout:
    """Delivery of events to this process's subscriptions."""

    def __init__(self) -> None:
        self._by_topic: dict[str, set[Subscription]] = {}

    def subscribe(self, *topics: str) -> Subscription:
        sub = Subscription(self, topics)
        for topic in sub.topics:
            self._by_topic.setdefault(topic, set()).add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        for topic in sub.topics:
            subs = self._by_topic.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[topic]

    def _deliver(self, event: Event) -> None:
        for sub in tuple(self._by_topic.get(event.topic, ())):
            sub._offer(event)

    def _deliver_lost(self) -> None:
        seen: set[Subscription] = set()
        for subs in self._by_topic.values():
            seen.update(subs)
        for sub in seen:
            sub._offer(Event("", lost=True))


def _encode(topic: str, data: dict[str, Any] | None) -> str:
    payload = json.dumps({"t": topic, "d": data or {}}, separators=(",", ":"))
    if len(payload.encode()) > MAX_PAYLOAD:
        raise EventError(f"event payload of topic {topic!r} is too large")
    return payload


def _decode(payload: str) -> Event | None:
    try:
        raw = json.loads(payload)
        return Event(str(raw["t"]), dict(raw["d"]))
    except (ValueError, KeyError, TypeError):
        return None


class LocalBus(_Fanout):
    """Events within one process."""

    async def publish(self, topic: str, data: dict[str, Any] | None = None) -> None:
        # Encode anyway so that a payload that would not fit PostgreSQL fails
        # in the embedded mode too, not only at scale.
        _encode(topic, data)
        self._deliver(Event(topic, dict(data or {})))

    async def close(self) -> None:
        self._deliver_lost()


class PostgresBus(_Fanout):
    """Events across processes through PostgreSQL LISTEN/NOTIFY."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn
        self._listener: asyncpg.Connection[asyncpg.Record] | None = None
        self._publisher: asyncpg.Connection[asyncpg.Record] | None = None
        self._publish_lock = asyncio.Lock()
        self._closed = False
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._listen()
        self._watchdog = asyncio.create_task(self._watch(), name="events-watchdog")

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(self._on_terminated)
        self._listener = conn

    def _on_notify(
        self, _conn: object, _pid: int, _channel: str, payload: object
    ) -> None:
        event = _decode(str(payload))
        if event is None:
            log.warning("event with malformed payload ignored")
            return
        self._deliver(event)

    def _on_terminated(self, _conn: object) -> None:
        if not self._closed:
            log.warning("event listener connection lost; reconnecting")
            self._listener = None

    async def _watch(self) -> None:
        """Reconnect a lost listener and tell subscribers they may have missed
        events."""
        attempt = 0
        while not self._closed:
            await asyncio.sleep(0.2)
            if self._listener is not None and not self._listener.is_closed():
                attempt = 0
                continue
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError) as exc:
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                log.warning("event listener reconnect failed: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                continue
            log.info("event listener reconnected")
            self._deliver_lost()

    async def publish(self, topic: str, data: dict[str, Any] | None = None) -> None:
        if self._closed:
            raise EventError("the event bus is closed")
        payload = _encode(topic, data)

        async with self._publish_lock:
            for attempt in range(2):
                try:
                    if self._publisher is None or self._publisher.is_closed():
                        self._publisher = await asyncpg.connect(self._dsn)
                    await self._publisher.execute(
                        "SELECT pg_notify($1, $2)", CHANNEL, payload
                    )
                    return
                except (OSError, asyncpg.PostgresError):
                    self._publisher = None
                    if attempt:
                        raise

    async def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        for conn in (self._listener, self._publisher):
            if conn is not None and not conn.is_closed():
                await conn.close()
        self._deliver_lost()


async def open_events(config: Config, db: Database) -> EventBus:
    """The bus the store calls for: local for SQLite, LISTEN/NOTIFY for
    PostgreSQL."""
    del config
    if db.dialect != "postgresql":
        return LocalBus()

    dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    bus = PostgresBus(dsn)
    await bus.start()
    return bus
