"""The metadata store: one async SQLAlchemy engine for SQLite or PostgreSQL.

Transactions are explicit. ``Database.write()`` opens a transaction that will
write: on SQLite it starts with ``BEGIN IMMEDIATE`` so two writers queue on the
database lock instead of failing when a read transaction upgrades; on
PostgreSQL it is an ordinary transaction. ``Database.read()`` opens a
transaction for reads only. SQLite runs in WAL mode, so readers never wait
for the writer. On SQLite both run on the event loop's thread
(``sqlite_inline``); migrations and tools keep aiosqlite's threads.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from nubo.store import sqlite_inline

log = logging.getLogger(__name__)

# Milliseconds a SQLite connection waits for the write lock before failing; a
# CLI command run beside `nubo serve` waits behind a delivery, not errors.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A WAL reader meets a busy database only while another connection recovers
# the WAL after a crash; its busy handler sleeps on the loop's thread, so it
# gives up sooner.
READ_BUSY_TIMEOUT_MS = 1_000

# Execution option asking for a SQLite transaction that takes the write lock
# at its start.
IMMEDIATE = "nubo_begin_immediate"


class StoreError(Exception):
    """The metadata store could not be reached or answered with an error."""


class StoreUnreachable(ConnectionError):
    """The database server could not be reached; the text says where.

    A ConnectionError, so callers that catch OSError around the store keep
    catching it; ``describe_error`` gives its text as it is.
    """


class Database:
    """An engine and the two kinds of transaction nubo uses."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine: AsyncEngine = _create_engine(url, self.is_sqlite, echo)
        self.read_engine = self.engine
        self.write_engine = self.engine
        if self.is_sqlite:
            self.read_engine = _create_sqlite_engine(
                url, echo, inline=True, busy_ms=READ_BUSY_TIMEOUT_MS
            )
            # No busy handler: it would sleep on the loop's thread. ``write``
            # waits for another process's lock with asyncio.sleep instead.
            self.write_engine = _create_sqlite_engine(url, echo, inline=True, busy_ms=0)
        self._write_lock: asyncio.Lock | None = None
        self._write_lock_loop: asyncio.AbstractEventLoop | None = None

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits on success and rolls back on error."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
            return

        # SQLite has one writer at a time. Writers of this process queue on
        # an asyncio lock instead of on SQLite's busy handler, which sleeps
        # in growing steps and left 8 concurrent deliveries mostly idle.
        # A write never opens another write, which SQLite could not serve.
        #
        # Limitation: the statements run on the loop's thread, so a write
        # of many rows (expunging 100,000 messages) holds every session of
        # this process for its duration, and so does the fsync of COMMIT on
        # a slow disk; in exchange a small write costs a tenth of what the
        # hand-overs to aiosqlite's thread cost, which under load made the
        # writers queue behind each other for 100 ms and more.
        async with self._sqlite_write_lock(), self._begin_immediate() as conn:
            yield conn

    @asynccontextmanager
    async def _begin_immediate(self) -> AsyncIterator[AsyncConnection]:
        """A SQLite write transaction, once another process (the CLI) has
        let go of the database's write lock; waits on the loop, not in
        SQLite's busy handler, for up to ``SQLITE_BUSY_TIMEOUT_MS``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
        delay = 0.001
        while True:
            async with _inline_connection(self.write_engine) as conn:
                conn = await conn.execution_options(**{IMMEDIATE: True})
                try:
                    txn = await conn.begin()
                except OperationalError as exc:
                    if not _is_busy(exc) or loop.time() + delay > deadline:
                        raise
                else:
                    try:
                        yield conn
                    except BaseException:
                        await txn.rollback()
                        raise
                    await txn.commit()
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _sqlite_write_lock(self) -> asyncio.Lock:
        # One lock per event loop: tools and tests may use a Database from
        # more than one loop in turn.
        loop = asyncio.get_running_loop()
        if self._write_lock is None or self._write_lock_loop is not loop:
            self._write_lock = asyncio.Lock()
            self._write_lock_loop = loop
        return self._write_lock

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for reads; it is rolled back at the end."""
        connect = _inline_connection if self.is_sqlite else _connection
        async with connect(self.read_engine) as conn, conn.begin() as txn:
            yield conn
            await txn.rollback()

    async def healthy(self) -> bool:
        """Whether a trivial query answers; used by /healthz."""
        try:
            async with self.read() as conn:
                await conn.execute(select(1))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("store health check failed: %s", type(exc).__name__)
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()
        if self.is_sqlite:
            await self.read_engine.dispose()
            await self.write_engine.dispose()


def _keep_parameters_out_of_logs() -> None:
    """SQL parameters hold addresses and password hashes: never log them.

    Even at ``log_level = debug`` the engine (which logs each statement and
    its parameters at INFO and DEBUG) and aiosqlite (which logs each call,
    parameters included, at DEBUG) speak at WARNING only.
    """
    for name in ("sqlalchemy.engine", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)


@asynccontextmanager
async def _inline_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.connect()`` of an inline SQLite engine, closed in place.

    ``AsyncConnection``'s own ``async with`` closes in a task of its own, so
    that a cancelled caller cannot leave a network driver half closed. On the
    loop's thread closing never waits, and that task let other transactions
    begin meanwhile, each on one more pooled connection: ten sessions made
    the pool open and close a SQLite connection for almost every read.
    """
    conn = await engine.connect()
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def _connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.connect()`` as SQLAlchemy closes it, for network drivers."""
    async with engine.connect() as conn:
        yield conn


def _is_busy(exc: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock."""
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
        "database is locked" in str(orig)
    )


def _create_engine(url: str, is_sqlite: bool, echo: bool) -> AsyncEngine:
    _keep_parameters_out_of_logs()
    if not is_sqlite:
        return create_async_engine(
            url,
            echo=echo,
            hide_parameters=True,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
        )

    return _create_sqlite_engine(
        url, echo, inline=False, busy_ms=SQLITE_BUSY_TIMEOUT_MS
    )


def _create_sqlite_engine(
    url: str, echo: bool, *, inline: bool, busy_ms: int
) -> AsyncEngine:
    """An engine on aiosqlite's threads (migrations and tools, which may
    wait ``busy_ms`` for a lock), or ``inline`` on the loop's thread (see
    ``sqlite_inline``)."""
    options: dict[str, Any] = {}
    if inline:
        options["module"] = AsyncAdapt_aiosqlite_dbapi(sqlite_inline, sqlite3)

    # Each aiosqlite connection owns a thread; NullPool would reopen the file
    # on every transaction, so keep a small pool of them instead.
    engine = create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        connect_args={"timeout": busy_ms / 1000},
        pool_size=5,
        max_overflow=10,
        **options,
    )
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: SyncConnection) -> None:
        if conn.get_execution_options().get(IMMEDIATE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def describe_error(exc: BaseException, url: URL | None = None) -> str:
    """A short reason for a store failure, without the SQL or its parameters.

    With the database's ``url``, a connection failure names the host and port
    it tried (never the user or password) and what to check.
    """
    if isinstance(exc, StoreUnreachable):
        return str(exc)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {str(exc.orig).splitlines()[0]}"
    if isinstance(exc, OSError) and url is not None and url.host:
        return _unreachable(exc, url)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def _unreachable(exc: OSError, url: URL) -> str:
    host = url.host or ""
    where = (
        f"[{host}]:{url.port or 5432}" if ":" in host else f"{host}:{url.port or 5432}"
    )
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host} (is the host name right?)"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} (is PostgreSQL running at {where}?)"
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    return f"cannot connect to {where}: {reason} (is PostgreSQL running at {where}?)"
