"""The opened store that services share: metadata, blobs and events.

``open_runtime`` makes the data folder, opens the database and applies
migrations, then opens the blob store and the event bus that the settings
name. The server and every command that touches the store go through it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nubo.config import Config
from nubo.store.blobs import Blobs, open_blobs
from nubo.store.database import Database
from nubo.store.events import EventBus, open_events
from nubo.store.migrate import upgrade

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: Config
    db: Database
    blobs: Blobs
    events: EventBus

    async def close(self) -> None:
        await self.events.close()
        await self.blobs.close()
        await self.db.close()


async def open_runtime(config: Config, *, migrate: bool = True) -> Runtime:
    config.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(config.effective_database_url)
    try:
        if migrate:
            before, after = await upgrade(db)
            if before != after:
                log.info("schema upgraded from=%s to=%s", before or "empty", after)
        blobs = open_blobs(config, db)
        events = await open_events(config, db)
    except BaseException:
        await db.close()
        raise
    return Runtime(config, db, blobs, events)
