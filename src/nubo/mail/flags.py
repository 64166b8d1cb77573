"""Message flags as the mailstore stores them (RFC 3501 §2.3.2, RFC 9051 §2.3.2).

A flag is a system flag (``\\Seen``, ``\\Answered``, ``\\Flagged``,
``\\Deleted``, ``\\Draft``) or a keyword (an atom such as ``$Forwarded`` or
``NonJunk``). System flags are bits of ``messages.flags`` (the map below is
the on-disk format: never renumber it); keywords go in ``messages.keywords``
as one string with a space before and after each keyword (" $Junk Work "),
so that SQL can find one keyword with LIKE.

Rules, all in this module so IMAP, webmail and import agree:

- system flags match case-insensitively and are written in their canonical
  spelling; keywords match case-insensitively too and keep the spelling
  they were first set with;
- ``\\Recent`` is a session property (RFC 3501 §2.3.2), never stored: it is
  ignored where flags are set, and RFC 9051 dropped it;
- any other name starting with a backslash is refused: ``flag-extension``
  names are reserved for future RFCs (RFC 3501 §9);
- a keyword is an ``atom`` (RFC 3501 §9): printable US-ASCII without
  ``( ) { % * " \\ ]`` or space; at most ``MAX_KEYWORD_LENGTH`` characters
  and ``MAX_KEYWORDS`` per message, so one client cannot grow a row without
  bound.

Parsing is pure (no I/O) and raises ``FlagSyntaxError``; the mailstore turns
it into its own ``InvalidFlag``.
"""

from __future__ import annotations

from collections.abc import Iterable

SEEN = 1
ANSWERED = 2
FLAGGED = 4
DELETED = 8
DRAFT = 16

SYSTEM_FLAGS: dict[str, int] = {
    "\\Seen": SEEN,
    "\\Answered": ANSWERED,
    "\\Flagged": FLAGGED,
    "\\Deleted": DELETED,
    "\\Draft": DRAFT,
}
ALL_SYSTEM = SEEN | ANSWERED | FLAGGED | DELETED | DRAFT
RECENT = "\\Recent"

MAX_KEYWORD_LENGTH = 100
MAX_KEYWORDS = 100

# The empty keywords column: one space, so that " kw " patterns still work.
NO_KEYWORDS = " "

_BY_LOWER = {name.lower(): (name, bit) for name, bit in SYSTEM_FLAGS.items()}
# atom-specials of RFC 3501 §9, besides CTL and SP which the range test
# below excludes.
_ATOM_SPECIALS = frozenset('(){%*"\\]')


class FlagSyntaxError(ValueError):
    """A flag that is not a system flag nor a valid keyword."""


def is_keyword(text: str) -> bool:
    """Whether ``text`` is an atom that may be stored as a keyword."""
    if not text or len(text) > MAX_KEYWORD_LENGTH:
        return False
    return all(0x20 < ord(c) < 0x7F and c not in _ATOM_SPECIALS for c in text)


def system_bit(name: str) -> int | None:
    """The bit of a system flag, in any case; None for anything else."""
    found = _BY_LOWER.get(name.lower())
    return None if found is None else found[1]


def parse_flags(flags: Iterable[str]) -> tuple[int, tuple[str, ...]]:
    """(system flag bits, keywords) of flags as a client gave them.

    Keywords come back in first-seen order without case-insensitive
    duplicates. ``FlagSyntaxError`` for a malformed or reserved flag.
    """
    bits = 0
    keywords: dict[str, str] = {}
    for flag in flags:
        if flag.startswith("\\"):
            found = _BY_LOWER.get(flag.lower())
            if found is not None:
                bits |= found[1]
            elif flag.lower() != RECENT.lower():
                raise FlagSyntaxError(f"unknown system flag {flag[:40]!r}")
            continue
        if not is_keyword(flag):
            raise FlagSyntaxError(f"invalid keyword {flag[:40]!r}")
        keywords.setdefault(flag.lower(), flag)
    if len(keywords) > MAX_KEYWORDS:
        raise FlagSyntaxError(f"more than {MAX_KEYWORDS} keywords")
    return bits, tuple(keywords.values())


def flag_names(bits: int, keywords: str) -> frozenset[str]:
    """Every flag of a stored message: system flags and keywords together."""
    names = {name for name, bit in SYSTEM_FLAGS.items() if bits & bit}
    names.update(split_keywords(keywords))
    return frozenset(names)


def split_keywords(column: str) -> tuple[str, ...]:
    """The keywords of a ``messages.keywords`` value, in stored order."""
    return tuple(column.split())


def keywords_column(keywords: Iterable[str]) -> str:
    """The ``messages.keywords`` value for these (already checked) keywords."""
    joined = " ".join(keywords)
    return f" {joined} " if joined else NO_KEYWORDS


def add_keywords(column: str, new: Iterable[str]) -> str:
    """``column`` with the keywords of ``new`` it lacks (case-insensitively),
    appended in order; ``FlagSyntaxError`` past ``MAX_KEYWORDS``."""
    current = split_keywords(column)
    seen = {k.lower() for k in current}
    added = [k for k in new if k.lower() not in seen]
    if not added:
        return column
    if len(current) + len(added) > MAX_KEYWORDS:
        raise FlagSyntaxError(f"more than {MAX_KEYWORDS} keywords")
    return keywords_column((*current, *added))


def remove_keywords(column: str, gone: Iterable[str]) -> str:
    """``column`` without the keywords of ``gone``, matched case-insensitively."""
    drop = {k.lower() for k in gone}
    if not drop:
        return column
    kept = [k for k in split_keywords(column) if k.lower() not in drop]
    return keywords_column(kept)


def apply_store(
    mode: str,
    bits: int,
    keywords: tuple[str, ...],
    old_bits: int,
    old_keywords: str,
) -> tuple[int, str] | None:
    """(bits, keywords column) after a STORE of ``mode`` "add", "remove" or
    "replace" (RFC 3501 §6.4.6), or None when nothing would change.
    Keywords compare case-insensitively, so a replace that only reorders or
    recases them changes nothing."""
    if mode == "add":
        new = (old_bits | bits, add_keywords(old_keywords, keywords))
    elif mode == "remove":
        new = (old_bits & ~bits, remove_keywords(old_keywords, keywords))
    elif mode == "replace":
        new = (bits, keywords_column(keywords))
    else:
        raise ValueError(f"unknown STORE mode {mode!r}")
    before = {k.lower() for k in split_keywords(old_keywords)}
    after = {k.lower() for k in split_keywords(new[1])}
    if new[0] == old_bits and before == after:
        return None
    return new
