"""The opened store that services share: metadata, blobs and events.

``open_runtime`` makes the data folder, opens the database and applies
migrations, then opens the blob store and the event bus that the settings
name. The server and every command that touches the store go through it.

A fault in a setting comes out as a ``ConfigError`` naming the setting (a data
folder that cannot be made, a blob folder that cannot be, a database URL that
does not parse); an unreachable database as ``StoreUnreachable``, whose text
says where it was looked for. The SQLite database holds password hashes, so
the data folder is made 0700 and ``nubo.db`` 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.exc import ArgumentError

from nubo.config import Config, ConfigError
from nubo.store.blobs import Blobs, BlobStoreError, open_blobs
from nubo.store.database import Database, StoreUnreachable, describe_error
from nubo.store.events import EventBus, open_events
from nubo.store.migrate import upgrade

log = logging.getLogger(__name__)

LOCK_FILE = "nubo.lock"


class DataFolderBusy(Exception):
    """Another ``nubo serve`` holds the data folder's lock."""


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


def prepare_data_folder(config: Config) -> None:
    """Make the data folder (0700) or check an existing one is writable."""
    path = config.data_path
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise ConfigError(f"setting data: {path} is not a folder") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"setting data: cannot create {path}: {reason}") from None
    if not path.is_dir():
        raise ConfigError(f"setting data: {path} is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"setting data: {path} is not writable")


@contextlib.contextmanager
def lock_data_folder(config: Config) -> Iterator[None]:
    """Hold ``<data>/nubo.lock`` while ``nubo serve`` runs on SQLite.

    Two servers on one SQLite store would each run the queue and the
    self-signed certificate renewal, so the second is refused. Commands take
    no lock: SQLite itself orders their writes. On PostgreSQL several
    processes may serve the same store, so nothing is locked.
    """
    if not config.effective_database_url.startswith("sqlite"):
        yield
        return
    path = config.data_path / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"setting data: cannot create {path}: {reason}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataFolderBusy(
                f"another nubo serve is using the data folder {config.data_path}"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def open_database(config: Config) -> Database:
    """The metadata store's engine, or a ConfigError for a URL that won't parse."""
    url = config.effective_database_url
    try:
        return Database(url)
    except (ArgumentError, ValueError) as exc:
        # The parser's own text quotes the URL, password and all.
        reason = "the port is not a number" if "int()" in str(exc) else "not a URL"
        raise ConfigError(f"setting database_url: {reason}") from None


def _private_database_file(config: Config) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use 0644).

    Its -wal and -shm files take the database file's mode. An existing file
    that others can read is tightened, with a warning.
    """
    if config.values["database_url"]:
        return
    path = config.data_path / "nubo.db"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"setting data: cannot create {path}: {reason}") from None
    else:
        os.close(fd)
        return

    for suffix in ("", "-wal", "-shm"):
        file = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(0o600)
                log.warning(
                    "file readable by others made private file=%s was=%o", file, mode
                )


async def open_runtime(config: Config, *, migrate: bool = True) -> Runtime:
    prepare_data_folder(config)
    _private_database_file(config)
    db = open_database(config)
    try:
        if migrate:
            try:
                before, after = await upgrade(db)
            except OSError as exc:
                raise StoreUnreachable(describe_error(exc, db.url)) from None
            if before != after:
                log.info("schema upgraded from=%s to=%s", before or "empty", after)
        try:
            blobs = open_blobs(config, db)
        except BlobStoreError as exc:
            raise ConfigError(f"setting blob_url: {blob_reason(exc)}") from None
        events = await open_events(config, db)
    except BaseException:
        await db.close()
        raise
    return Runtime(config, db, blobs, events)


def blob_reason(exc: BlobStoreError) -> str:
    """A blob store error's text with the system's reason behind it."""
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        return f"{exc}: {cause.strerror}"
    return str(exc)
