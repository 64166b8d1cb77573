"""The folder backend: blobs as files, the embedded default.

Staged bytes go to ``tmp/<random>`` in the same folder tree (so the same
filesystem), are flushed with ``fsync`` and then hard-linked to
``ab/cd/<sha256>``; the folder that received the link is flushed too, and so
are new fan-out folders' parents. A hard link rather than a rename keeps the
staged file until ``Blobs.put`` has committed its row: if the collector
removed the final name in between, ``publish`` links it again. Linking onto an
existing name fails, which is how identical bytes end up stored once.

No file operation runs on the event loop: each goes to a small thread pool.
A stream is written in 1 MiB pieces, each hashed and written in a worker
thread while the next piece is being received (one piece in flight per
stream), and read back with one piece read ahead.

Needs a filesystem with hard links and ``fsync`` on folders (any POSIX one).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

from nubo.store.blobs.backend import (
    CHUNK_SIZE,
    STAGING,
    Listed,
    Staged,
    blob_name,
    check_blob_id,
    parse_blob_name,
)
from nubo.store.blobs.errors import BlobNotFound, BlobStoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Worker threads for file I/O. Each stream keeps at most one operation in
# flight, so this bounds how many streams do I/O at once, not how many exist.
IO_THREADS = 8


class FolderBackend:
    """Blobs as files under ``root``."""

    kind = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._staging = root / STAGING
        try:
            self._staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BlobStoreError(f"cannot create blob folder {root}") from exc
        self._executor = ThreadPoolExecutor(IO_THREADS, "nubo-blobs")

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def _path(self, blob_id: str) -> Path:
        return self.root / blob_name(check_blob_id(blob_id))

    async def stage(self, chunks: AsyncIterable[bytes]) -> Staged:
        name = uuid.uuid4().hex
        try:
            temp = await self._run(_TempFile, self._staging / name)
        except OSError as exc:
            raise BlobStoreError("cannot create a staging file") from exc

        parts: list[bytes] = []
        buffered = 0
        try:
            async for chunk in chunks:
                parts.append(chunk)
                buffered += len(chunk)
                if buffered >= CHUNK_SIZE:
                    # Wait for the previous piece only now, so receiving this
                    # one overlapped with writing that one.
                    await temp.wait()
                    temp.submit(self._executor, temp.write, parts)
                    parts, buffered = [], 0
            await temp.wait()
            temp.submit(self._executor, temp.finish, parts)
            await temp.wait()
        except BaseException:
            # Our write failed, the caller's stream failed, or we were
            # cancelled: remove the partial file once the thread is done.
            temp.abandon(self._executor)
            raise
        return Staged(temp.digest.hexdigest(), temp.size, name)

    async def publish(self, staged: Staged) -> None:
        try:
            await self._run(self._link, staged.name, self._path(staged.id))
        except FileNotFoundError as exc:
            raise BlobStoreError("staged bytes vanished before publish") from exc
        except OSError as exc:
            raise BlobStoreError("cannot publish a blob") from exc

    def _link(self, name: str, final: Path) -> None:
        _make_folders(final.parent)
        try:
            os.link(self._staging / name, final)
        except FileExistsError:
            return
        _fsync_folder(final.parent)

    async def discard(self, name: str) -> None:
        if not name:
            return
        try:
            await self._run(_unlink, self._staging / os.path.basename(name))
        except OSError as exc:
            raise BlobStoreError("cannot remove a staging file") from exc

    async def open(self, blob_id: str) -> AsyncIterator[bytes]:
        path = self._path(blob_id)
        try:
            file = await self._run(_open_read, path)
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None
        except OSError as exc:
            raise BlobStoreError("cannot open a blob") from exc
        return self._read(file)

    async def _read(self, file: IO[bytes]) -> AsyncIterator[bytes]:
        ahead: Future[bytes] = self._executor.submit(file.read, CHUNK_SIZE)
        try:
            while True:
                try:
                    data = await asyncio.wrap_future(ahead)
                except OSError as exc:
                    raise BlobStoreError("cannot read a blob") from exc
                if not data:
                    return
                ahead = self._executor.submit(file.read, CHUNK_SIZE)
                yield data
        finally:
            # Closing while a worker still reads could hand the descriptor
            # number to another file; close after that read instead.
            ahead.add_done_callback(lambda _: file.close())

    async def exists(self, blob_id: str) -> bool:
        try:
            return await self._run(self._path(blob_id).is_file)
        except OSError as exc:
            raise BlobStoreError("cannot check a blob") from exc

    async def delete(self, blob_id: str) -> None:
        try:
            await self._run(_unlink, self._path(blob_id))
        except OSError as exc:
            raise BlobStoreError("cannot delete a blob") from exc

    async def list(self) -> AsyncIterator[Listed]:
        try:
            tops = await self._run(_fanout_folders, self.root)
            for top in tops:
                for entry in await self._run(_scan_top, self.root / top):
                    yield entry
            for entry in await self._run(_scan_staging, self._staging):
                yield entry
        except OSError as exc:
            raise BlobStoreError("cannot list the blob folder") from exc

    async def healthy(self) -> bool:
        # The staging folder is where every write starts: it must exist and
        # be writable by us.
        try:
            return await self._run(_writable_folder, self._staging)
        except OSError:
            return False

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)


class _TempFile:
    """A staging file being written by worker threads, one step at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.closed = False
        self.digest = hashlib.sha256()
        self.size = 0
        self.last: Future[None] | None = None

    def submit(
        self,
        executor: ThreadPoolExecutor,
        step: Callable[[list[bytes]], None],
        parts: list[bytes],
    ) -> None:
        self.last = executor.submit(step, parts)

    async def wait(self) -> None:
        """Wait for the step in flight; its failure is a ``BlobStoreError``."""
        if self.last is None:
            return
        try:
            await asyncio.wrap_future(self.last)
        except OSError as exc:
            raise BlobStoreError("cannot write a staging file") from exc

    def write(self, parts: list[bytes]) -> None:
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.digest.update(data)
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)

    def finish(self, parts: list[bytes]) -> None:
        if parts:
            self.write(parts)
        os.fsync(self.fd)
        self.closed = True
        os.close(self.fd)

    def abandon(self, executor: ThreadPoolExecutor) -> None:
        """Close and remove the file once the step in flight is over."""
        executor.submit(self._abandon, self.last)

    def _abandon(self, last: Future[None] | None) -> None:
        if last is not None:
            wait([last])
        try:
            if not self.closed:
                self.closed = True
                os.close(self.fd)
            _unlink(self.path)
        except OSError as exc:
            # The collector removes staging leftovers after the grace period.
            log.warning("cannot remove a staging file error=%s", exc.strerror)


def _writable_folder(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _open_read(path: Path) -> IO[bytes]:
    # Unbuffered: reads are already 1 MiB, a buffer would only copy.
    return open(path, "rb", buffering=0)


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_folders(folder: Path) -> None:
    """Create the two fan-out levels ending at ``folder``, durably."""
    if folder.is_dir():
        return
    for level in (folder.parent, folder):
        try:
            level.mkdir(mode=0o700)
        except FileExistsError:
            continue
        # A new folder's entry lives in its parent: flush the parent.
        _fsync_folder(level.parent)


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime, UTC)


def _fanout_folders(root: Path) -> list[str]:
    with os.scandir(root) as entries:
        return sorted(
            e.name
            for e in entries
            if len(e.name) == 2 and e.is_dir(follow_symlinks=False)
        )


def _scan_top(top: Path) -> list[Listed]:
    found: list[Listed] = []
    with os.scandir(top) as subs:
        folders = [s.path for s in subs if s.is_dir(follow_symlinks=False)]
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = f"{top.name}/{os.path.basename(folder)}/{entry.name}"
                blob_id = parse_blob_name(rel)
                if blob_id is None or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while we looked
                found.append(Listed(blob_id, False, _mtime(stat), stat.st_size))
    return found


def _scan_staging(staging: Path) -> list[Listed]:
    found: list[Listed] = []
    with os.scandir(staging) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found.append(Listed(entry.name, True, _mtime(stat), stat.st_size))
    return found
