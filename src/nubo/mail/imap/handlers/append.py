"""Placeholder: being written (see handlers/__init__.py)."""

from __future__ import annotations

from nubo.mail.imap.commands import Command
from nubo.mail.imap.session import Route

ROUTES: dict[type[Command], Route] = {}

from nubo.mail.imap.parser import AppendStart  # noqa: E402
from nubo.mail.imap.session import Result, Session  # noqa: E402


async def append(session: Session, start: AppendStart) -> Result:
    session.parser.cancel()
    return Result("NO", "APPEND is not available yet")
