"""A queue of 100 messages survives ``kill -9`` of ``nubo serve``.

The queue is filled in the data folder first, then ``nubo serve`` (a real
subprocess, on the embedded default) starts delivering to a scripted MX,
which leaves the 31st message unanswered; the server is killed with
SIGKILL there, started again, and the MX must end with each of the 100
Message-IDs exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nubo.config import load
from nubo.mail.queue import Outbound
from nubo.runtime import open_runtime
from tests.mail.queue_crash import crash_message
from tests.mail.scripted_mx import scripted_mx, wait_for
from tests.serve import NuboProcess, cheap_env

pytestmark = pytest.mark.slow

COUNT = 100


async def queued(env: dict[str, str], add: int = 0) -> int:
    """Enqueue ``add`` messages in the data folder; how many are queued."""
    config = load(environ=env)
    rt = await open_runtime(config)
    try:
        outbound = Outbound.for_runtime(rt)
        for n in range(add):
            await outbound.enqueue(
                "ann@example.org", [f"u{n}@remote.test"], crash_message(n)
            )
        return len(await outbound.list())
    finally:
        await rt.close()


def test_kill_9_of_nubo_serve_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    with scripted_mx(hold_after=30) as mx:
        env = cheap_env(
            tmp_path / "data",
            NUBO_MX_OVERRIDE=f"*={mx.address}",
            NUBO_QUEUE_CONCURRENCY="1",
            NUBO_HOSTNAME="mail.example.org",
            NUBO_LOG_LEVEL="warning",
        )
        assert asyncio.run(queued(env, COUNT)) == COUNT

        first = NuboProcess(env)
        first.start()
        try:
            wait_for(mx.held.is_set, timeout=60)
        finally:
            first.kill()  # SIGKILL, while the 31st message waits for its reply
        assert len(mx.delivered) == 30

        mx.hold_after = None
        mx.release()
        second = NuboProcess(env)
        second.start()
        try:
            wait_for(lambda: len(mx.delivered) >= COUNT, timeout=120)
        finally:
            assert second.stop() == 0
        assert asyncio.run(queued(env)) == 0

    per_id = mx.message_ids()
    assert sorted(per_id) == sorted(f"<{n}@crash.test>" for n in range(COUNT))
    assert set(per_id.values()) == {1}
