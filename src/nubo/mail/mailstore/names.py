"""Mailbox names and special uses: one normal form, checked once.

A name is UTF-8 text in Unicode NFC (RFC 9051 §5.1 asks for NFC; IMAP's
modified UTF-7 is the adapter's business) with "/" as the hierarchy
delimiter (RFC 3501 §5.1.1). ``mailbox_name`` refuses:

- empty names, empty levels, a leading or trailing "/";
- control characters, and "%" and "*", which are LIST wildcards
  (RFC 3501 §6.3.8) and would make such a name impossible to list alone;
- "." and ".." as a level, so that an export to folders stays inside its
  own tree;
- more than ``MAX_LENGTH`` characters, ``MAX_LEVEL_LENGTH`` in one level, or
  ``MAX_DEPTH`` levels.

INBOX is case-insensitive (RFC 3501 §5.1): "inbox", "Inbox/Work" are stored
as "INBOX" and "INBOX/Work".

Special uses are RFC 6154 attributes, stored without the backslash. Only
those that name a real mailbox are accepted: ``\\All`` and ``\\Flagged`` are
virtual views, which the mailstore does not build.
"""

from __future__ import annotations

import unicodedata

from nubo.mail.mailstore.errors import InvalidMailboxName, InvalidSpecialUse

DELIMITER = "/"
INBOX = "INBOX"

MAX_LENGTH = 1000  # the mailboxes.name column
MAX_LEVEL_LENGTH = 255
MAX_DEPTH = 32

SPECIAL_USES = ("Archive", "Drafts", "Junk", "Sent", "Trash")
_SPECIAL_BY_LOWER = {use.lower(): use for use in SPECIAL_USES}

# What every user has (RFC 6154 §2 for the attributes); ensure_mailboxes
# creates the missing ones.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    (INBOX, None),
    ("Sent", "Sent"),
    ("Drafts", "Drafts"),
    ("Junk", "Junk"),
    ("Trash", "Trash"),
    ("Archive", "Archive"),
)

_FORBIDDEN = frozenset("%*")


def mailbox_name(name: str) -> str:
    """The stored form of ``name``; ``InvalidMailboxName`` if it breaks a rule."""
    if not name:
        raise InvalidMailboxName("empty mailbox name")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMailboxName("mailbox name is not valid UTF-8") from None
    name = unicodedata.normalize("NFC", name)
    if len(name) > MAX_LENGTH:
        raise InvalidMailboxName(f"mailbox name longer than {MAX_LENGTH}")

    levels = name.split(DELIMITER)
    if len(levels) > MAX_DEPTH:
        raise InvalidMailboxName(f"mailbox name deeper than {MAX_DEPTH} levels")
    for level in levels:
        _check_level(level)
    if levels[0].upper() == INBOX:
        levels[0] = INBOX
    return DELIMITER.join(levels)


def _check_level(level: str) -> None:
    if not level:
        raise InvalidMailboxName('empty level in mailbox name (check the "/")')
    if level in (".", ".."):
        raise InvalidMailboxName(f"{level!r} is not a mailbox name")
    if len(level) > MAX_LEVEL_LENGTH:
        raise InvalidMailboxName(f"mailbox name level longer than {MAX_LEVEL_LENGTH}")
    for char in level:
        if char in _FORBIDDEN:
            raise InvalidMailboxName(f"{char!r} is not allowed in mailbox names")
        if unicodedata.category(char) == "Cc":
            raise InvalidMailboxName("control characters in mailbox name")


def parents(name: str) -> list[str]:
    """The superior names of a (normalized) name, outermost first."""
    levels = name.split(DELIMITER)
    return [DELIMITER.join(levels[:n]) for n in range(1, len(levels))]


def is_inferior(name: str, of: str) -> bool:
    """Whether ``name`` is below ``of`` in the hierarchy."""
    return name.startswith(of + DELIMITER)


def special_use(value: str | None) -> str | None:
    """``"\\Sent"``, ``"sent"`` or ``"Sent"`` as stored (``"Sent"``); None
    stays None; ``InvalidSpecialUse`` for anything else."""
    if value is None:
        return None
    found = _SPECIAL_BY_LOWER.get(value.removeprefix("\\").lower())
    if found is None:
        raise InvalidSpecialUse(f"unsupported special use {value[:40]!r}")
    return found
