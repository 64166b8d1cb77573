"""Placeholder: being written (see handlers/__init__.py)."""

from __future__ import annotations

from nubo.mail.imap.commands import Command
from nubo.mail.imap.session import Route

ROUTES: dict[type[Command], Route] = {}
