"""What the sub-commands share: their error, opening the store, prompts."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy.exc import SQLAlchemyError

from nubo.accounts.passwords import MAX_PASSWORD_CHARS
from nubo.config import Config
from nubo.runtime import Runtime, open_runtime
from nubo.store.blobs.store import CollectReport
from nubo.store.database import describe_error

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# Standard input beyond this cannot hold an acceptable password (4 bytes per
# character at most), so reading stops there.
_MAX_SECRET_BYTES = 4 * MAX_PASSWORD_CHARS + 2


class CommandError(Exception):
    """Ends a command with a one-line message and an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@asynccontextmanager
async def runtime(config: Config) -> AsyncIterator[Runtime]:
    """The store, migrated, for a command that needs it."""
    try:
        rt = await open_runtime(config)
    except (SQLAlchemyError, OSError) as exc:
        raise CommandError(f"cannot open the store: {describe_error(exc)}") from None
    try:
        yield rt
    finally:
        await rt.close()


def read_secret(prompt: str) -> str:
    """A password from the terminal (asked twice) or from standard input.

    Standard input must hold one line of UTF-8 text: a second line would be
    silently dropped, so it is refused. At the terminal, end of input
    (Ctrl-D) and Ctrl-C end the command with one line.
    """
    if not sys.stdin.isatty():
        return _secret_from_stdin()

    import getpass

    try:
        with _interruptible():
            first = getpass.getpass(prompt)
            second = getpass.getpass("again: ")
    except EOFError:
        raise CommandError("no password given") from None
    except KeyboardInterrupt:
        raise CommandError("interrupted", EXIT_INTERRUPTED) from None
    except UnicodeDecodeError:
        raise CommandError("the password is not UTF-8 text") from None
    if first != second:
        raise CommandError("the two passwords differ")
    return first


def _secret_from_stdin() -> str:
    raw = sys.stdin.buffer.read(_MAX_SECRET_BYTES + 1)
    if len(raw) > _MAX_SECRET_BYTES:
        raise CommandError(
            f"the password is longer than {MAX_PASSWORD_CHARS} characters"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("the password is not UTF-8 text") from None

    line = text.removesuffix("\n").removesuffix("\r")
    if "\n" in line or "\r" in line:
        raise CommandError("the password must be one line")
    return line


@contextmanager
def _interruptible() -> Iterator[None]:
    """Let Ctrl-C interrupt a blocking prompt inside ``asyncio.run``.

    asyncio.run's own SIGINT handler only cancels the main task, which cannot
    run while the prompt blocks the loop: the press would wait for Enter.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def describe_collect(report: CollectReport) -> str:
    """One line for a blob collection: ``collected 3 blobs, freed 1.2 MiB``."""
    count = report.expired + report.orphans + report.staged
    line = f"collected {count} blob{'' if count == 1 else 's'}, freed "
    line += describe_bytes(report.freed_bytes)
    if report.errors:
        line += f"; {report.errors} could not be removed (see the log)"
    return line


def describe_bytes(size: int) -> str:
    """``0 bytes``, ``512 bytes``, ``1.5 KiB`` … ``2.0 TiB``."""
    if size < 1024:
        return f"{size} byte{'' if size == 1 else 's'}"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"
