"""The two storage pairs a benchmark runs on, each set up and torn down.

``embedded`` gives a measurement the settings of SQLite and a blob folder in
a temporary folder; ``scale`` those of a throwaway PostgreSQL database and a
prefix in a SeaweedFS started for the run. ``measure(pair, settings)`` is the
benchmark's own coroutine.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tests.conftest import create_pg_database, drop_pg_database, pg_admin_url
from tests.seaweed import running_seaweed

T = TypeVar("T")
Measure = Callable[[str, dict[str, object]], Awaitable[T]]


def embedded(measure: Measure[T]) -> T:
    with tempfile.TemporaryDirectory(prefix="nubo-bench-") as folder:
        settings: dict[str, object] = {
            "data": folder,
            "database_url": f"sqlite+aiosqlite:///{folder}/nubo.db",
            "blob_url": f"{folder}/blobs",
        }
        return asyncio.run(measure("embedded", settings))


def scale(measure: Measure[T]) -> T:
    async def run(prefix_settings: dict[str, str]) -> T:
        admin = pg_admin_url()
        name, url = await create_pg_database(admin)
        try:
            with tempfile.TemporaryDirectory(prefix="nubo-bench-") as folder:
                settings: dict[str, object] = {"data": folder, "database_url": url}
                settings.update(prefix_settings)
                return await measure("scale", settings)
        finally:
            await drop_pg_database(admin, name)

    # running_seaweed() waits for weed with asyncio.run of its own, so it is
    # entered outside our event loop.
    with running_seaweed() as server:
        return asyncio.run(run(server.settings("bench-" + uuid.uuid4().hex[:12])))
