"""IDLE (RFC 2177): the client waits and the server tells it of changes as
they happen, from the store's events (``mailbox:<id>``, which cross
processes through PostgreSQL LISTEN/NOTIFY).

The session reads the client's bytes and waits for events at once; the
first line after ``+ idling`` must be DONE, anything else is answered BAD
with IDLE's tag (RFC 2177 §3). An ``* OK Still here`` every
``idle_keepalive`` seconds keeps NAT tables from dropping the connection,
and IDLE ends with ``* BYE`` after ``idle_timeout`` (30 minutes, RFC 2177
§3: clients re-issue IDLE at least every 29 minutes).
"""

from __future__ import annotations

import asyncio
import time

from nubo.mail.imap import commands as c
from nubo.mail.imap.commands import Command
from nubo.mail.imap.parser import Done, Reject
from nubo.mail.imap.session import (
    AUTHENTICATED,
    OK,
    READ_SIZE,
    ClientGone,
    Result,
    Route,
    Session,
    Sync,
)


async def idle(session: Session, _command: c.Idle) -> Result:
    """RFC 2177 §3."""
    session.parser.expect_done()
    session.write(b"+ idling\r\n")
    await session.announce(expunge=True)
    await session.flush()

    session.waiting = True  # a shutdown may end IDLE at once
    deadline = time.monotonic() + session.limits.idle_timeout
    reading: asyncio.Task[bytes] | None = None
    waiting: asyncio.Task[None] | None = None
    try:
        while True:
            event = session.parser.next_event()
            if isinstance(event, Done):
                return OK
            if isinstance(event, Reject):
                return Result("BAD", "Expected DONE to end IDLE")
            if event is not None:
                return Result("BAD", "Expected DONE to end IDLE")

            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if reading is None:
                reading = asyncio.ensure_future(session.reader.read(READ_SIZE))
            if waiting is None and session.selected is not None:
                waiting = asyncio.ensure_future(session.selected.wait_change())
            tasks: set[asyncio.Future[object]] = {reading}  # type: ignore[arg-type]
            if waiting is not None:
                tasks.add(waiting)  # type: ignore[arg-type]
            wait = min(remaining, session.limits.idle_keepalive)
            done, _ = await asyncio.wait(
                tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                session.write(b"* OK Still here\r\n")
                await session.flush()
                continue
            if waiting is not None and waiting in done:
                waiting.result()
                waiting = None
                await session.announce(expunge=True)
                await session.flush()
            if reading in done:
                data = _read_result(reading)
                reading = None
                session.parser.feed(data)
    finally:
        session.waiting = False
        for task in (reading, waiting):
            if task is not None and not task.done():
                task.cancel()


def _read_result(task: asyncio.Task[bytes]) -> bytes:
    try:
        data = task.result()
    except (ConnectionError, OSError) as exc:
        raise ClientGone(str(exc)) from None
    if not data:
        raise ClientGone("closed by the client during IDLE")
    return data


ROUTES: dict[type[Command], Route] = {
    c.Idle: Route(idle, AUTHENTICATED, Sync.NONE),
}
