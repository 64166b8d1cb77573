"""What the sub-commands share: their error and opening the store."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import SQLAlchemyError

from nubo.config import Config
from nubo.runtime import Runtime, open_runtime
from nubo.store.database import describe_error


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
    """A password from the terminal (asked twice) or from standard input."""
    import getpass

    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass(prompt)
    second = getpass.getpass("again: ")
    if first != second:
        raise CommandError("the two passwords differ")
    return first
