"""SEARCH keys as a typed tree (RFC 3501 §6.4.4, RFC 7162 §3.1.5).

The client's keys become a small set of nodes a server can turn into SQL:
``And`` (the implicit AND of a list and of "(...)"), ``Or``, ``Not``,
``All``, ``Flag`` (ANSWERED ... UNSEEN, KEYWORD, UNKEYWORD, RECENT, OLD),
``Header`` (FROM, TO, CC, BCC, SUBJECT and HEADER, with the field name in
lower case), ``Text`` (BODY and TEXT), ``Date`` (BEFORE, ON, SINCE on the
internal date; SENTBEFORE, SENTON, SENTSINCE on the Date header), ``Size``
(LARGER, SMALLER), ``Messages`` (a sequence set, or UID with one) and
``ModSeq``. NEW is "(RECENT UNSEEN)" as RFC 3501 defines it.

Strings are decoded from the CHARSET the client names. Nesting counts
against ``Limits.max_depth``.

# Limitation: only US-ASCII and UTF-8 (RFC 3501 §6.4.4 requires US-ASCII);
# any other CHARSET gets NO [BADCHARSET (US-ASCII UTF-8)], and clients then
# retry in UTF-8. A table of Python codecs would lift it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.fetch import MAX_MODSEQ
from nubo.mail.imap.lexer import Reader
from nubo.mail.imap.sequence import SequenceSet

CHARSETS = ("US-ASCII", "UTF-8")


@dataclass(frozen=True, slots=True)
class All:
    """ALL: every message."""


@dataclass(frozen=True, slots=True)
class And:
    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class Or:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class Not:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Flag:
    """The message has (``present``) or lacks ``flag``: \\Seen, a keyword."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class Header:
    """``field`` (lower case) holds ``value``; an empty value: has the field."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class Text:
    """BODY (``body_only``) or TEXT (header and body) holds ``value``."""

    value: str
    body_only: bool


@dataclass(frozen=True, slots=True)
class Date:
    """INTERNALDATE (``sent`` False) or the Date header before/on/since."""

    relation: Literal["before", "on", "since"]
    date: datetime.date
    sent: bool


@dataclass(frozen=True, slots=True)
class Size:
    """RFC822.SIZE above (``larger``) or below ``size``."""

    size: int
    larger: bool


@dataclass(frozen=True, slots=True)
class Messages:
    """A sequence set of message numbers, or of UIDs (``uid``)."""

    numbers: SequenceSet
    uid: bool


@dataclass(frozen=True, slots=True)
class ModSeq:
    """MODSEQ: changed at ``modseq`` or later (RFC 7162 §3.1.5)."""

    modseq: int


SearchKey = (
    All | And | Or | Not | Flag | Header | Text | Date | Size | Messages | ModSeq
)

_FLAG_KEYS: dict[str, SearchKey] = {
    "ANSWERED": Flag("\\Answered"),
    "DELETED": Flag("\\Deleted"),
    "DRAFT": Flag("\\Draft"),
    "FLAGGED": Flag("\\Flagged"),
    "SEEN": Flag("\\Seen"),
    "RECENT": Flag("\\Recent"),
    "UNANSWERED": Flag("\\Answered", present=False),
    "UNDELETED": Flag("\\Deleted", present=False),
    "UNDRAFT": Flag("\\Draft", present=False),
    "UNFLAGGED": Flag("\\Flagged", present=False),
    "UNSEEN": Flag("\\Seen", present=False),
    "OLD": Flag("\\Recent", present=False),
    "NEW": And((Flag("\\Recent"), Flag("\\Seen", present=False))),
    "ALL": All(),
}
_HEADER_KEYS = {
    "FROM": "from",
    "TO": "to",
    "CC": "cc",
    "BCC": "bcc",
    "SUBJECT": "subject",
}
_DATE_KEYS: dict[str, tuple[Literal["before", "on", "since"], bool]] = {
    "BEFORE": ("before", False),
    "ON": ("on", False),
    "SINCE": ("since", False),
    "SENTBEFORE": ("before", True),
    "SENTON": ("on", True),
    "SENTSINCE": ("since", True),
}


def read_search(reader: Reader) -> tuple[str | None, SearchKey]:
    """``[CHARSET astring] 1*(SP search-key)`` after "SEARCH SP"."""
    charset = None
    if reader.keyword(b"CHARSET"):
        reader.sp()
        charset = reader.astring().decode("ascii", "replace").upper()
        if charset not in CHARSETS:
            raise ParseError(
                "unsupported charset",
                code="BADCHARSET (US-ASCII UTF-8)",
                status="NO",
            )
        reader.sp()
    return charset, _keys(reader)


def _keys(reader: Reader) -> SearchKey:
    """``search-key *(SP search-key)``: one key, or their AND."""
    keys = reader.spaced(lambda: read_key(reader))
    return keys[0] if len(keys) == 1 else And(tuple(keys))


def read_key(reader: Reader) -> SearchKey:
    """One ``search-key``."""
    first = reader.peek()
    if first == 0x28:
        reader.open()
        key = _keys(reader)
        reader.close()
        return key
    if 0x30 <= first <= 0x39 or first == 0x2A:
        return Messages(reader.sequence_set(), uid=False)
    name = reader.atom()
    fixed = _FLAG_KEYS.get(name)
    if fixed is not None:
        return fixed
    reader.sp()
    return _key_with_arguments(reader, name)


def _key_with_arguments(reader: Reader, name: str) -> SearchKey:
    if name in _HEADER_KEYS:
        return Header(_HEADER_KEYS[name], _string(reader))
    if name in _DATE_KEYS:
        relation, sent = _DATE_KEYS[name]
        return Date(relation, reader.date(), sent)
    if name in ("KEYWORD", "UNKEYWORD"):
        return Flag(reader.raw_atom().decode("ascii"), present=name == "KEYWORD")
    if name in ("BODY", "TEXT"):
        return Text(_string(reader), body_only=name == "BODY")
    if name == "HEADER":
        field = reader.astring().decode("ascii", "replace").lower()
        reader.sp()
        return Header(field, _string(reader))
    if name in ("LARGER", "SMALLER"):
        return Size(reader.number(), larger=name == "LARGER")
    if name == "UID":
        return Messages(reader.sequence_set(), uid=True)
    if name in ("NOT", "OR"):
        return _logic(reader, name)
    if name == "MODSEQ":
        return _modseq(reader)
    raise ParseError("unknown search key")


def _logic(reader: Reader, name: str) -> SearchKey:
    reader.enter()
    first = read_key(reader)
    if name == "NOT":
        reader.leave()
        return Not(first)
    reader.sp()
    second = read_key(reader)
    reader.leave()
    return Or(first, second)


def _modseq(reader: Reader) -> ModSeq:
    # RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer;
    # nubo keeps one mod-sequence per message, so the entry is read and ignored.
    if reader.peek() == 0x22:
        reader.quoted()
        reader.sp()
        if reader.atom() not in ("PRIV", "SHARED", "ALL"):
            raise ParseError("unknown MODSEQ entry type")
        reader.sp()
    return ModSeq(reader.number(MAX_MODSEQ))


def _string(reader: Reader) -> str:
    return reader.text(reader.astring())
