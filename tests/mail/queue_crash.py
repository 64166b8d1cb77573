"""A nubo process for the queue's kill -9 test: enqueues, then delivers.

Run as ``python queue_crash.py COUNT`` with the storage pair and the queue
settings in ``NUBO_*`` variables (``mx_override`` pointing at the test MX).
It enqueues COUNT messages whose Message-IDs are ``<N@crash.test>``, prints
"enqueued", then runs the queue's workers until it is killed.
"""

from __future__ import annotations

import asyncio
import sys

from nubo.config import load
from nubo.mail.queue import Outbound
from nubo.runtime import open_runtime


def crash_message(n: int) -> bytes:
    return (
        f"From: ann@example.org\r\nTo: u{n}@remote.test\r\nSubject: {n}\r\n"
        f"Message-ID: <{n}@crash.test>\r\n\r\nbody {n}\r\n"
    ).encode()


async def main(count: int) -> None:
    config = load()
    rt = await open_runtime(config)
    outbound = Outbound.for_runtime(rt)
    for n in range(count):
        await outbound.enqueue(
            "ann@example.org", [f"u{n}@remote.test"], crash_message(n)
        )
    print("enqueued", flush=True)
    await outbound.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
