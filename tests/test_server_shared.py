"""Several ``nubo serve`` processes sharing one PostgreSQL and one object store.

The README promises that processes may share the scale store and start
together. These tests hold that promise over real sockets and real
subprocesses: two servers started at the same instant on one fresh database
and one bucket prefix (so both race to migrate and to create the first
administrator), a user added by the command line beside them, and events
crossing from one process to others through LISTEN/NOTIFY.

They need PostgreSQL and SeaweedFS: locally a missing one skips them with a
message, in CI it fails them (see ``pg_server`` and ``seaweed``).
"""

from __future__ import annotations

import asyncio
import json
import re
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from nubo.config import load
from nubo.store.database import Database
from nubo.store.events import CHANNEL, PostgresBus, open_events
from nubo.store.migrate import _PG_LOCK_KEY, head_revision
from tests.conftest import create_pg_database, drop_pg_database
from tests.seaweed import Seaweed
from tests.serve import NuboProcess, cheap_env

pytestmark = [pytest.mark.scale, pytest.mark.slow]

# Generous: two interpreters start at once and one of them waits for the
# other's migrations; a loaded CI machine must not turn that into a failure.
START_TIMEOUT = 60.0
# Log lines at these levels, or a traceback, mean something went wrong even if
# the process came up.
_TROUBLE = re.compile(r" (WARNING|ERROR|CRITICAL) |Traceback")


@dataclass(frozen=True)
class SharedStore:
    """One throwaway database and one bucket prefix, as ``NUBO_*`` settings."""

    admin_url: str  # asyncpg DSN of the throwaway database, for checks
    env: dict[str, str]

    def nubo_env(self, data: Path, **extra: str) -> dict[str, str]:
        """Environment of one process on the shared store, own data folder."""
        return cheap_env(data, **self.env, **extra)


@pytest.fixture
def shared(pg_server: str, seaweed: Seaweed) -> Iterator[SharedStore]:
    name, url = asyncio.run(create_pg_database(pg_server))
    # The form an operator writes (README), not the driver-qualified one.
    plain = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    env = {"NUBO_DATABASE_URL": plain}
    env.update(seaweed.env("shared-" + uuid.uuid4().hex[:12]))
    try:
        yield SharedStore(admin_url=plain, env=env)
    finally:
        asyncio.run(drop_pg_database(pg_server, name))


async def _fetch(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def fetch(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(dsn, query, *args))


# What the starting servers are held at, so that they meet there for certain
# instead of by the luck of interpreter start-up times: the migration lock on
# an empty store; on a migrated store without users, the users table, which
# the first-run bootstrap reads first.
GATES = {
    "empty": ("SELECT pg_advisory_xact_lock($1)", (_PG_LOCK_KEY,)),
    "migrated": ("LOCK TABLE users IN ACCESS EXCLUSIVE MODE", ()),
}


async def _waiting(conn: asyncpg.Connection[asyncpg.Record]) -> int:
    """How many sessions on this database wait for a lock."""
    # Not through pg_stat_activity: inside the gate's transaction that view
    # is a snapshot taken at its first read, and would never change.
    found: int = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND database ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return found


async def _until_waiting(
    conn: asyncpg.Connection[asyncpg.Record], starting: list[Future[float]]
) -> None:
    """Until every starting server waits at the gate, or one has ended (its
    error, raised by its future, then says why)."""
    # pg_locks says nothing when it changes: it can only be polled.
    while await _waiting(conn) < len(starting):
        if any(future.done() for future in starting):
            return
        await asyncio.sleep(0.02)


def start_together(
    servers: list[NuboProcess], dsn: str, gate: str
) -> tuple[list[float], float]:
    """Start every server and hold them all at ``gate`` before letting them on
    together; returns the seconds each took to be ready, and how long the
    gate was held.

    One thread per server, so that every ``Popen`` happens before any of them
    is waited for.
    """
    statement, args = GATES[gate]
    with asyncio.Runner() as runner, ThreadPoolExecutor(len(servers)) as pool:
        conn = runner.run(asyncpg.connect(dsn))
        transaction = conn.transaction()
        try:
            runner.run(transaction.start())
            runner.run(conn.execute(statement, *args))
            closed = time.monotonic()
            futures = [pool.submit(s.start, START_TIMEOUT) for s in servers]
            waiting = asyncio.wait_for(_until_waiting(conn, futures), 30)
            runner.run(waiting)
            held = time.monotonic() - closed
        finally:
            # Opening the gate also on failure lets the servers go on, so the
            # threads end instead of waiting out their timeout.
            runner.run(transaction.rollback())
            runner.run(conn.close())
        return [future.result() for future in futures], held


def stop_together(servers: list[NuboProcess]) -> list[int]:
    """SIGTERM to every server at once; their exit statuses."""
    for server in servers:
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
    return [server.process.wait(15) for server in servers if server.process]


def nubo(
    shared: SharedStore, data: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """A ``nubo`` command on the shared store; fails the test if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "nubo", *args],
        input=stdin,
        env=shared.nubo_env(data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("store", ["empty", "migrated"])
def test_two_servers_share_one_store(
    shared: SharedStore, tmp_path: Path, store: str
) -> None:
    """Both servers come up, on an empty database (they race to migrate) and
    on a migrated one without users (they race to create the administrator,
    which the migration lock no longer keeps apart)."""
    if store == "migrated":
        nubo(shared, tmp_path / "cli", "db", "upgrade")
    servers = [NuboProcess(shared.nubo_env(tmp_path / f"data{n}")) for n in (1, 2)]
    try:
        took, held = start_together(servers, shared.admin_url, store)
        print(f"both held {held:.2f}s; ready after {took[0]:.2f}s, {took[1]:.2f}s")

        for server in servers:
            answer = httpx.get(server.url("http") + "/healthz", timeout=10)
            assert answer.status_code == 200, server.url("http")
            assert answer.json() == {"status": "ok", "database": "ok", "blobs": "ok"}

        # Migrated once, to head, while the other process waited on the lock.
        versions = fetch(shared.admin_url, "SELECT version_num FROM alembic_version")
        assert [row[0] for row in versions] == [head_revision()]
        logs = [_log(server) for server in servers]
        migrations = sum("schema upgraded from=empty" in text for text in logs)
        assert migrations == (1 if store == "empty" else 0)

        # The first administrator, created by exactly one of the two.
        admins = fetch(
            shared.admin_url, "SELECT id FROM users WHERE is_admin ORDER BY id"
        )
        assert len(admins) == 1
        shown = [server.admin for server in servers if server.admin is not None]
        assert len(shown) == 1
        assert shown[0][0] == "admin@localhost"
        assert sum("administrator" in "\n".join(s.output) for s in servers) == 1

        # Each server listens on the shared event channel.
        listening = fetch(
            shared.admin_url,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %' || $1",
            f'"{CHANNEL}"',
        )
        assert listening[0][0] == len(servers)

        # A user added by the command line beside the running servers lands in
        # the one store they both read. (No server surface shows users yet, so
        # the store is where this is checked.)
        nubo(
            shared,
            tmp_path / "cli",
            *("user", "add", "ann@localhost"),
            stdin="a long enough password\n",
        )
        users = fetch(
            shared.admin_url,
            "SELECT address, is_admin FROM users ORDER BY address",
        )
        assert [(row[0], row[1]) for row in users] == [
            ("admin@localhost", True),
            ("ann@localhost", False),
        ]
        for server in servers:
            answer = httpx.get(server.url("http") + "/healthz", timeout=10)
            assert answer.status_code == 200

        assert stop_together(servers) == [0, 0]
    finally:
        for server in servers:
            server.kill()

    password = shown[0][1]
    for server, log in zip(servers, logs, strict=True):
        stderr = server.stderr()
        assert not _TROUBLE.search(stderr), stderr
        assert password not in stderr
        assert password not in log


def _log(server: NuboProcess) -> str:
    return (Path(server.env["NUBO_DATA"]) / "logs" / "nubo.log").read_text()


# A subscriber in its own interpreter: it subscribes through nubo's bus, says
# "ready" once LISTEN is in place, then prints each event as one JSON line.
SUBSCRIBER = """
import asyncio, json, sys
from nubo.config import load
from nubo.store.database import Database
from nubo.store.events import open_events

async def main(url, topic, count):
    db = Database(url)
    bus = await open_events(load(environ={}), db)
    with bus.subscribe(topic) as sub:
        print("ready", flush=True)
        for _ in range(count):
            event = await asyncio.wait_for(sub.get(), 20)
            print(json.dumps([event.topic, event.data, event.lost]), flush=True)
    await bus.close()
    await db.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_events_reach_subscribers_in_other_processes(
    pg_server: str, tmp_path: Path
) -> None:
    name, url = asyncio.run(create_pg_database(pg_server))
    topic = "mailbox:7"
    children: list[subprocess.Popen[str]] = []
    try:
        for _ in range(2):
            children.append(
                subprocess.Popen(
                    [sys.executable, "-c", SUBSCRIBER, url, topic, "3"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=tmp_path,
                )
            )
        for child in children:
            _await_ready(child, START_TIMEOUT)

        began = time.monotonic()
        asyncio.run(_publish(url, topic))
        outputs = [child.communicate(timeout=30) for child in children]
        print(f"delivered to both in {time.monotonic() - began:.3f}s")
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        asyncio.run(drop_pg_database(pg_server, name))

    expected = [[topic, {"n": n}, False] for n in range(3)]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert [json.loads(line) for line in out.splitlines()] == expected


def _await_ready(child: subprocess.Popen[str], timeout: float) -> None:
    """Until the subscriber says it listens; a timeout rather than a hang if
    it never does, and its error output if it ended."""
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError("subscriber not ready")
    line = child.stdout.readline()
    if line != "ready\n":
        _, err = child.communicate(timeout=10)
        pytest.fail(f"subscriber did not start ({child.returncode}): {err}")


async def _publish(url: str, topic: str) -> None:
    """Publish from this process: three events for the children, in order,
    with one of another topic between them that they must not see."""
    db = Database(url)
    bus = await open_events(load(environ={}), db)
    assert isinstance(bus, PostgresBus)
    try:
        await bus.publish(topic, {"n": 0})
        await bus.publish("mailbox:8", {"n": -1})
        await bus.publish(topic, {"n": 1})
        await bus.publish(topic, {"n": 2})
    finally:
        await bus.close()
        await db.close()
