"""SQLite on the event loop's own thread, behind aiosqlite's interface.

aiosqlite runs every call on a thread of its connection and wakes the event
loop for each answer. One read transaction of nubo makes about nine such
calls (cursor, BEGIN, execute, fetch, close, rollback), and each hand-over
between threads costs far more than the query: a trivial read transaction
took 1.3 ms of CPU, of which SQLite's own work was a few microseconds. An
IMAP session reads several times per command, so the hand-overs were most
of the server's CPU under load.

This module offers the part of aiosqlite's interface that SQLAlchemy's
``sqlite+aiosqlite`` dialect calls, with each call done at once on the
calling thread. ``Database`` uses it for its read and write transactions. In
WAL mode a reader never waits for the writer (https://sqlite.org/wal.html),
so a read holds the loop only while its query runs, about as long as Python
holds it anyway to build the rows under the GIL. A writer may wait for
another process's lock: ``Database.write`` gives its connections no busy
handler and waits with asyncio.sleep instead.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from types import SimpleNamespace
from typing import Any

# What the dialect reads from the driver module.
DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info


class Cursor:
    """An sqlite3 cursor whose methods are coroutines that never wait."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(
        self, sql: str, parameters: Iterable[Sequence[Any]]
    ) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if size is None:
            return self._cursor.fetchmany()
        return self._cursor.fetchmany(size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _AtOnce:
    """Stands for aiosqlite's queue of calls: the dialect's isolation level
    setter puts ``(future, function)`` on it; the function runs here."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(exc)
        else:
            future.set_result(result)


class Connection:
    """An sqlite3 connection with aiosqlite's coroutine methods."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._tx = _AtOnce()
        self._thread = SimpleNamespace(daemon=True)

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("Connection closed")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self._open().cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._open().commit()

    async def rollback(self) -> None:
        self._open().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Connecting:
    """What ``connect`` returns: awaited, it opens the connection."""

    def __init__(self, database: str, kwargs: dict[str, Any]) -> None:
        self._database = database
        self._kwargs = kwargs
        self._thread = SimpleNamespace(daemon=True)

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._connect().__await__()

    async def _connect(self) -> Connection:
        # The pool may hand the connection to any task, all on one thread;
        # sqlite3's same-thread check would only refuse a pool cleanup run
        # from elsewhere at exit.
        kwargs = {**self._kwargs, "check_same_thread": False}
        return Connection(sqlite3.connect(self._database, **kwargs))


def connect(database: str, **kwargs: Any) -> _Connecting:
    return _Connecting(database, kwargs)
