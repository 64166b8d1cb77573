"""SEARCH over one mailbox: a small criteria tree run as SQL (RFC 3501 §6.4.4).

Protocol code (the IMAP handler) turns a client's keys into this tree:
``And``, ``Or``, ``Not``, ``Flag``, ``Header``, ``Text``, ``Date``, ``Size``,
``Uids`` and ``ModSeq``; ``EVERY`` (``And(())``) matches every message and
``NOTHING`` (``Or(())``) none. ``find_uids`` answers the matching UIDs,
ascending (``Mailstore.search``).

How it runs. Flags and keywords, dates, sizes, UIDs and MODSEQs are SQL
conditions on the mailbox's rows, which the UNIQUE(mailbox_id, uid) index
hands over in UID order; only UIDs come back. The header fields SEARCH
names (FROM, TO, CC, BCC, SUBJECT, and HEADER of an indexed field) are SQL
too: a LIKE on ``messages.search`` (the decoded, lowercased header text as
JSON) lets few rows through cheaply, then the database takes the field's
text out of the JSON and matches it exactly. BODY, TEXT and HEADER of a
field outside the index need the message bytes, read only for the rows the
other criteria leave. So that NOT stays right over such inexact SQL, each
node compiles to two conditions: ``maybe``, which every match passes, and
``surely``, which only matches pass; NOT swaps the two. Rows that pass
``surely`` are answers at once, the other ``maybe`` rows are decided in
Python (``decide``).

Dates are those of the stored UTC times: RFC 3501 asks for the date
"disregarding time and timezone", which for INTERNALDATE nubo takes as the
UTC date. A message without a Date header matches no SENT* key.

Measured on 100,000 rows (SQLite; PostgreSQL within 2x): UNSEEN 60-80 ms
with 50,000 hits, SUBJECT 90-120 ms, most of it moving the UIDs.

# Limitation: SENTBEFORE/SENTON/SENTSINCE compare the UTC date of the Date
# header, not its date in the sender's zone: a message sent at 23:30 -0500
# counts as sent the next day. Storing the header's own date would lift it.
# Limitation: BODY, TEXT and HEADER of a field outside the index
# (``nubo.mail.mime.search.SEARCH_FIELDS``: List-Id, X-Spam-Flag, ...) read
# every candidate message from the blob store (no full-text index): about
# 0.25 ms a small message from a folder, 0.5 ms from SeaweedFS, so 25 to 60
# seconds over 100,000 messages when nothing else narrows the search. Only
# the header and text parts are held, 16 messages at a time. An index
# (SQLite FTS5, PostgreSQL tsvector; more fields in the JSON) would lift it.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    func,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.mail import flags as fl
from nubo.mail.mailstore.searchtext import MessageText, Span, needed_spans
from nubo.mail.message import MessageInfo
from nubo.mail.mime.search import SEARCH_FIELDS
from nubo.store.blobs import BlobNotFound, Blobs
from nubo.store.database import Database
from nubo.store.schema import messages

log = logging.getLogger(__name__)

MAX_SQL_TERMS = 300
"""Conditions (a UID range is one) one search puts in SQL; see _Compiler."""
HOIST_RANGES = 100
"""A top-level UID set of more ranges is applied to the answer instead."""
READ_AHEAD = 16
"""Messages read from the blob store at once for BODY and TEXT; only their
text parts are held."""
BYTES_SLICE = 500
"""Rows whose blob ids and structure are read at once for BODY and TEXT."""
DECIDE_IN_THREAD = 1024 * 1024
"""Messages larger than this are decoded in a worker thread."""
LIKE_ESCAPE = "/"

# -- the criteria ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class And:
    """Every part matches; ``And(())`` matches every message."""

    parts: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Some part matches; ``Or(())`` matches no message."""

    parts: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Criterion


@dataclass(frozen=True, slots=True)
class Flag:
    """The message has ``name``: a system flag ("\\Seen") or a keyword,
    either in any case (``nubo.mail.flags``). Names that cannot be stored
    ("\\Recent", "\\Other", non-atoms) match nothing."""

    name: str


@dataclass(frozen=True, slots=True)
class Header:
    """The decoded text of header field ``field`` (lower case) contains
    ``value``, in any case; an empty ``value``: the message has the field."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class Text:
    """The decoded body text, and the header too when ``headers``,
    contains ``value`` in any case (BODY and TEXT)."""

    value: str
    headers: bool


@dataclass(frozen=True, slots=True)
class Date:
    """The UTC date of the internal date, or of the Date header when
    ``sent``, is before, on or since ``day``. No Date header: no match."""

    relation: Literal["before", "on", "since"]
    day: datetime.date
    sent: bool


@dataclass(frozen=True, slots=True)
class Size:
    """The size in octets is larger or smaller than ``size``."""

    relation: Literal["larger", "smaller"]
    size: int


@dataclass(frozen=True, slots=True)
class Uids:
    """The UID is in one of the inclusive ``ranges`` (kept sorted and merged)."""

    ranges: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", _merge(self.ranges))

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, int):
            return False
        index = bisect.bisect_right(self.ranges, (uid, _BEYOND)) - 1
        return index >= 0 and self.ranges[index][1] >= uid


@dataclass(frozen=True, slots=True)
class ModSeq:
    """The MODSEQ is ``at_least`` or more (RFC 7162 §3.1.5)."""

    at_least: int


Criterion = And | Or | Not | Flag | Header | Text | Date | Size | Uids | ModSeq
_BEYOND = 2**64  # above every UID, for bisecting (low, high) pairs

EVERY = And(())
NOTHING = Or(())


def _merge(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted((min(a, b), max(a, b)) for a, b in ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return tuple(merged)


# -- running a search ---------------------------------------------------------


async def find_uids(
    db: Database, blobs: Blobs, mailbox_id: int, criteria: Criterion
) -> list[int]:
    """The UIDs of the mailbox's messages that match ``criteria``, ascending.

    A mailbox that does not exist has no messages: the answer is empty.
    """
    criteria, post = _hoist_long_uid_sets(criteria)
    plan = compile_sql(criteria, db.dialect)
    if plan.maybe is False:
        return []

    async with db.read() as conn:
        sure, undecided = await _select(conn, mailbox_id, plan, criteria)
    if undecided:
        # A row changed between the two statements could be in both.
        decided = await _decide_rows(db, blobs, mailbox_id, criteria, undecided)
        sure = sorted(set(sure).union(decided))
    for uids in post:
        sure = [uid for uid in sure if uid in uids]
    return sure


def _hoist_long_uid_sets(criteria: Criterion) -> tuple[Criterion, list[Uids]]:
    """A top-level UID set too long for one statement ("1,3,5,...") is
    checked against the answer instead; SQL keeps only its bounds."""
    parts = criteria.parts if isinstance(criteria, And) else (criteria,)
    long_sets = [p for p in parts if isinstance(p, Uids) and _too_long(p)]
    if not long_sets:
        return criteria, []
    kept: list[Criterion] = [p for p in parts if p not in long_sets]
    for uids in long_sets:
        kept.append(Uids(((uids.ranges[0][0], uids.ranges[-1][1]),)))
    return And(tuple(kept)), long_sets


def _too_long(uids: Uids) -> bool:
    return len(uids.ranges) > HOIST_RANGES


async def _select(
    conn: AsyncConnection, mailbox_id: int, plan: Plan, criteria: Criterion
) -> tuple[list[int], list[Candidate]]:
    """(UIDs that surely match, rows left for Python to decide)."""
    where = [messages.c.mailbox_id == mailbox_id]
    if not isinstance(plan.maybe, bool) and not plan.exact:  # False never gets here
        where.append(plan.maybe)
    sure: list[int] = []
    if plan.surely is not False:
        surely = [] if isinstance(plan.surely, bool) else [plan.surely]
        stmt = select(messages.c.uid).where(*where, *surely).order_by(messages.c.uid)
        sure = list((await conn.execute(stmt)).scalars())
    if plan.exact:
        return sure, []

    # The rest in a second statement, by condition rather than by UID list.
    # Conditions are never NULL (see _date_sql), so NOT surely is exact.
    assert not isinstance(plan.surely, bool) or plan.surely is False
    rest = where if plan.surely is False else [*where, not_(plan.surely)]
    stmt = select(*_columns(criteria)).where(*rest).order_by(messages.c.uid)
    return sure, [Candidate(row) for row in await conn.execute(stmt)]


def _columns(criteria: Criterion) -> list[Any]:
    """The columns Python needs to decide ``criteria``, and no more: a
    header search over many rows should not parse every row's dates."""
    wanted = {messages.c.uid}
    for node in _walk(criteria):
        if isinstance(node, Flag):
            wanted.update((messages.c.flags, messages.c.keywords))
        elif isinstance(node, Date):
            wanted.add(messages.c.sent_date if node.sent else messages.c.internal_date)
        elif isinstance(node, Size):
            wanted.add(messages.c.size)
        elif isinstance(node, ModSeq):
            wanted.add(messages.c.modseq)
        elif isinstance(node, Header) and not _unindexed(node):
            wanted.add(messages.c.search)
    return sorted(wanted, key=lambda column: column.name)


async def _decide_rows(
    db: Database,
    blobs: Blobs,
    mailbox_id: int,
    criteria: Criterion,
    rows: Sequence[Candidate],
) -> list[int]:
    """The UIDs of ``rows`` that match, reading bytes only where needed."""
    found: list[int] = []
    later: list[Candidate] = []
    for row in rows:
        verdict = decide(criteria, row, None)
        if verdict is None:
            later.append(row)
        elif verdict:
            found.append(row.uid)

    # Where the bytes are and how they are laid out is read a slice at a
    # time: the structure JSON of 100,000 messages would not fit in memory.
    whole = needs_body(criteria)
    for start in range(0, len(later), BYTES_SLICE):
        batch = {row.uid: row for row in later[start : start + BYTES_SLICE]}
        # IN, not sql.select_messages: SQLite scans the whole mailbox for
        # an OR of BETWEEN ranges, but looks each IN value up in the index.
        stmt = select(messages.c.uid, messages.c.blob_id, messages.c.info).where(
            messages.c.mailbox_id == mailbox_id, messages.c.uid.in_(list(batch))
        )
        async with db.read() as conn:
            where = sorted(await conn.execute(stmt), key=lambda place: place.uid)
        for first in range(0, len(where), READ_AHEAD):
            places = where[first : first + READ_AHEAD]
            texts = await asyncio.gather(*(_read(blobs, p, whole) for p in places))
            for place, text in zip(places, texts, strict=True):
                row = batch[place.uid]
                if text is not None and await _decide_text(criteria, row, text):
                    found.append(row.uid)
    return found


async def _read(blobs: Blobs, place: Any, whole: bool) -> MessageText | None:
    """The text of the message at ``place`` (a row of uid, blob_id, info):
    its header alone unless ``whole``; None when its bytes are gone
    (expunged since the rows were read)."""
    info = MessageInfo.from_json(place.info)
    spans = needed_spans(info, body=whole)
    try:
        octets = await _read_spans(blobs, place.blob_id, spans)
    except BlobNotFound:
        log.info("search skipped a message without bytes uid=%d", place.uid)
        return None
    return MessageText(info, octets)


async def _read_spans(
    blobs: Blobs, blob_id: str, spans: Sequence[Span]
) -> dict[Span, bytes]:
    """The octets of ``spans`` of a blob, streamed: an attachment is read
    past, never held, and nothing after the last span is read."""
    kept = {span: bytearray() for span in spans}
    last = max(end for _, end in spans)
    offset = 0
    stream = await blobs.open(blob_id)
    try:
        async for chunk in stream:
            after = offset + len(chunk)
            for (start, end), data in kept.items():
                if start < after and end > offset:
                    data += chunk[max(start - offset, 0) : min(end, after) - offset]
            offset = after
            if offset >= last:
                break
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    return {span: bytes(data) for span, data in kept.items()}


async def _decide_text(criteria: Criterion, row: Candidate, text: MessageText) -> bool:
    if text.size > DECIDE_IN_THREAD:
        # Decoding a large message would stall every other session.
        verdict = await asyncio.to_thread(decide, criteria, row, text)
    else:
        verdict = decide(criteria, row, text)
    return bool(verdict)


# -- SQL ---------------------------------------------------------------------

Condition = ColumnElement[bool] | bool


class Plan(NamedTuple):
    """A criterion as SQL: every match passes ``maybe``; whatever passes
    ``surely`` matches. ``exact`` when the two are the same condition."""

    maybe: Condition
    surely: Condition

    @property
    def exact(self) -> bool:
        return self.maybe is self.surely

    @classmethod
    def of(cls, condition: Condition) -> Plan:
        return cls(condition, condition)


IN_PYTHON = Plan(True, False)
"""A criterion SQL leaves to Python: every row may match, none surely."""


def compile_sql(criteria: Criterion, dialect: str) -> Plan:
    """The two SQL conditions of ``criteria`` (see the module docstring)."""
    return _Compiler(dialect).plan(criteria)


class _Compiler:
    """The conditions of one statement, within a budget of SQL terms: a
    command may hold 2,000 keys and sequence sets of any length, but
    SQLite refuses expressions more than 1,000 deep (a flat AND of 1,000
    is that deep) and both databases take about 32,000 bound parameters.
    Past the budget, criteria are decided in Python instead."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.terms_left = MAX_SQL_TERMS

    def plan(self, criteria: Criterion) -> Plan:
        if isinstance(criteria, And | Or):
            plans = [self.plan(part) for part in criteria.parts]
            join = _all if isinstance(criteria, And) else _any
            if all(plan.exact for plan in plans):
                return Plan.of(join([plan.maybe for plan in plans]))
            return Plan(join([p.maybe for p in plans]), join([p.surely for p in plans]))
        if isinstance(criteria, Not):
            plan = self.plan(criteria.part)
            if plan.exact:
                return Plan.of(_negate(plan.maybe))
            return Plan(_negate(plan.surely), _negate(plan.maybe))
        if isinstance(criteria, Text):
            # An empty string is in every text; anything else needs the bytes.
            return Plan.of(True) if not criteria.value else IN_PYTHON
        if _unindexed(criteria):
            return IN_PYTHON
        return self.leaf(criteria)

    def leaf(self, criteria: Flag | Header | Date | Size | Uids | ModSeq) -> Plan:
        cost = len(criteria.ranges) if isinstance(criteria, Uids) else 1
        if cost <= self.terms_left:
            self.terms_left -= cost
            return _leaf_sql(criteria, self.dialect)
        if isinstance(criteria, Uids) and self.terms_left:
            # The span in SQL, the ranges in Python.
            self.terms_left -= 1
            low, high = criteria.ranges[0][0], criteria.ranges[-1][1]
            return Plan(messages.c.uid.between(low, high), False)
        return IN_PYTHON


def _leaf_sql(
    criteria: Flag | Header | Date | Size | Uids | ModSeq, dialect: str
) -> Plan:
    if isinstance(criteria, Header):
        return _header_sql(criteria, dialect)
    if isinstance(criteria, Uids):
        ranges = criteria.ranges
        each = _any([messages.c.uid.between(lo, hi) for lo, hi in ranges])
        if len(ranges) < 2:
            return Plan.of(each)
        # SQLite uses no index for an OR of ranges; the span around them
        # it does use, so a sparse set does not scan the whole mailbox.
        span = messages.c.uid.between(ranges[0][0], ranges[-1][1])
        return Plan.of(_all([span, each]))
    return Plan.of(_exact_sql(criteria))


def _exact_sql(criteria: Flag | Date | Size | ModSeq) -> Condition:
    if isinstance(criteria, Flag):
        return _flag_sql(criteria.name)
    if isinstance(criteria, Date):
        return _date_sql(criteria)
    if isinstance(criteria, Size):
        if criteria.relation == "larger":
            return messages.c.size > criteria.size
        return messages.c.size < criteria.size
    return messages.c.modseq >= criteria.at_least


def _flag_sql(name: str) -> Condition:
    bit = fl.system_bit(name)
    if bit is not None:
        return messages.c.flags.bitwise_and(bit) != 0
    if not fl.is_keyword(name):
        return False  # \Recent (never stored), unknown \Names
    # Keywords are stored as " kw1 kw2 " in the case they were first set
    # with, and match in any case (nubo.mail.flags).
    pattern = "% " + like_escape(name.lower()) + " %"
    return func.lower(messages.c.keywords).like(pattern, escape=LIKE_ESCAPE)


def _date_sql(criteria: Date) -> ColumnElement[bool]:
    column = messages.c.sent_date if criteria.sent else messages.c.internal_date
    start = _midnight(criteria.day)
    end = _next_midnight(criteria.day)
    if criteria.relation == "before":
        condition: ColumnElement[bool] = column < start
    elif criteria.relation == "since" or end is None:
        condition = column >= start
    else:
        condition = and_(column >= start, column < end)
    if criteria.sent:
        # Without a Date the comparison is NULL, and NOT NULL is NULL too:
        # make it false so that NOT SENTBEFORE matches such messages.
        condition = and_(column.is_not(None), condition)
    return condition


def _midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), datetime.UTC)


def _next_midnight(day: datetime.date) -> datetime.datetime | None:
    if day == datetime.date.max:
        return None
    return _midnight(day + datetime.timedelta(days=1))


def _header_sql(criteria: Header, dialect: str) -> Plan:
    """An indexed field's text, taken out of the JSON by the database and
    matched with LIKE."""
    # In the JSON text a key is the only string followed by a colon, so
    # '"subject":' names the field exactly.
    key = like_escape(json.dumps(criteria.field) + ":")
    if not criteria.value:
        return Plan.of(messages.c.search.like(f"%{key}%", escape=LIKE_ESCAPE))

    # First a LIKE on the JSON text, cheap, that every match passes: the
    # stored JSON escapes non-ASCII characters ("\u00fc"), quotes and
    # backslashes, one character at a time, so the escaped needle is in
    # the escaped text whenever the needle is in the text. Then the exact
    # test on the field's own text.
    needle = criteria.value.lower()
    escaped = json.dumps(needle)[1:-1]
    prefilter = messages.c.search.like(
        f'%{key}"%{like_escape(escaped)}%', escape=LIKE_ESCAPE
    )
    # A missing field is NULL; coalesce keeps NOT of this exact.
    text = func.coalesce(_field_text(criteria.field, dialect), "")
    exact = text.like(f"%{like_escape(needle)}%", escape=LIKE_ESCAPE)
    return Plan.of(and_(prefilter, exact))


def _field_text(field: str, dialect: str) -> ColumnElement[str]:
    """The text of one field of ``messages.search`` (lowercased already,
    so LIKE's case rules on either database do not matter)."""
    if dialect == "postgresql":
        value = cast(messages.c.search, postgresql.JSON)[field]
        return type_coerce(value.as_string(), String)
    return type_coerce(func.json_extract(messages.c.search, f'$."{field}"'), String)


def like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with ESCAPE '/'. Not the
    backslash: PostgreSQL reads it as an escape by default, and the JSON
    text is full of them."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _all(conditions: Sequence[Condition]) -> Condition:
    if any(c is False for c in conditions):
        return False
    kept = [c for c in conditions if not isinstance(c, bool)]
    if not kept:
        return True
    return kept[0] if len(kept) == 1 else and_(*kept)


def _any(conditions: Sequence[Condition]) -> Condition:
    if any(c is True for c in conditions):
        return True
    kept = [c for c in conditions if not isinstance(c, bool)]
    if not kept:
        return False
    return kept[0] if len(kept) == 1 else or_(*kept)


def _negate(condition: Condition) -> Condition:
    if isinstance(condition, bool):
        return not condition
    return not_(condition)


# -- Python ------------------------------------------------------------------


class Candidate:
    """A row Python decides on, its header JSON parsed on first use."""

    def __init__(self, row: Any) -> None:
        self.row = row
        self.uid: int = row.uid

    @cached_property
    def fields(self) -> dict[str, str]:
        found: dict[str, str] = json.loads(self.row.search)
        return found

    @cached_property
    def keywords(self) -> frozenset[str]:
        return frozenset(k.lower() for k in fl.split_keywords(self.row.keywords))


def decide(
    criteria: Criterion, row: Candidate, text: MessageText | None
) -> bool | None:
    """Whether the row matches; None when that needs the message's bytes
    and ``text`` is None."""
    if isinstance(criteria, And | Or):
        stop = isinstance(criteria, Or)  # the answer that ends the loop
        verdict: bool | None = not stop
        for part in criteria.parts:
            found = decide(part, row, text)
            if found is stop:
                return stop
            if found is None:
                verdict = None
        return verdict
    if isinstance(criteria, Not):
        found = decide(criteria.part, row, text)
        return None if found is None else not found
    if isinstance(criteria, Header):
        return _decide_header(criteria, row, text)
    if isinstance(criteria, Text):
        if not criteria.value:
            return True
        if text is None:
            return None
        return text.contains(criteria.value.lower(), headers=criteria.headers)
    return _decide_row(criteria, row)


def _decide_header(
    criteria: Header, row: Candidate, text: MessageText | None
) -> bool | None:
    if criteria.field in SEARCH_FIELDS:
        fields = row.fields
    elif text is None:
        return None
    else:
        fields = text.fields
    value = fields.get(criteria.field)
    return value is not None and criteria.value.lower() in value


def _decide_row(criteria: Flag | Date | Size | Uids | ModSeq, row: Candidate) -> bool:
    if isinstance(criteria, Flag):
        bit = fl.system_bit(criteria.name)
        if bit is not None:
            return bool(row.row.flags & bit)
        return fl.is_keyword(criteria.name) and criteria.name.lower() in row.keywords
    if isinstance(criteria, Date):
        return _decide_date(criteria, row)
    if isinstance(criteria, Size):
        if criteria.relation == "larger":
            return bool(row.row.size > criteria.size)
        return bool(row.row.size < criteria.size)
    if isinstance(criteria, Uids):
        return row.uid in criteria
    return bool(row.row.modseq >= criteria.at_least)


def _decide_date(criteria: Date, row: Candidate) -> bool:
    when: datetime.datetime | None = (
        row.row.sent_date if criteria.sent else row.row.internal_date
    )
    if when is None:
        return False
    day = when.astimezone(datetime.UTC).date()
    if criteria.relation == "before":
        return day < criteria.day
    if criteria.relation == "on":
        return day == criteria.day
    return day >= criteria.day


def needs_bytes(criteria: Criterion) -> bool:
    """Whether deciding may need the message's bytes (BODY, TEXT, or a
    header field outside the index)."""
    return any(isinstance(node, Text) or _unindexed(node) for node in _walk(criteria))


def needs_body(criteria: Criterion) -> bool:
    """Whether deciding may need more than the header (BODY, TEXT)."""
    return any(isinstance(node, Text) for node in _walk(criteria))


def _unindexed(node: Criterion) -> bool:
    return isinstance(node, Header) and node.field not in SEARCH_FIELDS


def _walk(criteria: Criterion) -> Iterable[Criterion]:
    yield criteria
    if isinstance(criteria, And | Or):
        for part in criteria.parts:
            yield from _walk(part)
    elif isinstance(criteria, Not):
        yield from _walk(criteria.part)
