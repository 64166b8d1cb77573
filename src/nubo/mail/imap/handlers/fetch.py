"""FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8, §7.4.2).

Every item is served from what the mailstore keeps: flags, dates and size
from the message row; ENVELOPE, BODY and BODYSTRUCTURE from the structure
parsed once at delivery (``MessageRow.info``, rendered by
``nubo.mail.message``); RFC822*, and BODY[section]<partial>, byte-exact
from the message's blob through the offsets of that structure. A command
reads only what its items need: the structure only for the items above
that use it (``with_info``), the blob only for body items, once per
message however many sections are asked.

Messages are read in chunks of UIDs and their answers streamed through
``Session.write_big``, so ``FETCH 1:*`` over 100,000 messages holds one
chunk of rows at a time, never the mailbox. FLAGS, UID and MODSEQ alone,
the commonest bulk fetch of a syncing client, read four columns
(``Mailstore.flags``) instead of whole rows.

Choices where RFC 3501 leaves room, compared with Dovecot 2.3.19:

- NUL cannot be sent in a literal (RFC 3501 §4.3): in body data a NUL
  octet is sent as 0x80, as Dovecot does. One octet for one, so literal
  lengths, partial offsets and RFC822.SIZE (the stored size) stay the same
  numbers a client computes from each other. In header strings (ENVELOPE,
  BODYSTRUCTURE) NUL becomes U+FFFD (``nubo.mail.message.imap_string``),
  as Dovecot does too.
- A section that does not exist, and a partial whose origin is past the
  end, answer the empty string ``""`` (RFC 3501 §6.4.5); Dovecot sends the
  same value as the literal ``{0}``.
- BODY[...] without PEEK, RFC822 and RFC822.TEXT set \\Seen in a mailbox
  selected read-write; the answer then carries FLAGS even when not asked
  (RFC 3501 §6.4.5), as Dovecot's does.
- UID comes first in every answer that has it; items come once each, in
  the order asked (BODY[1] and BODY.PEEK[1] answer as one, BODY[1]),
  except that FLAGS comes before MODSEQ when only those are asked.
- A message expunged by another session and not yet announced (a ghost):
  FETCH by number answers the others and ends with ``NO [EXPUNGEISSUED]``
  (RFC 2180 §4.1.2, RFC 5530). UID FETCH ends with ``OK [EXPUNGEISSUED]``:
  UIDs that no longer exist are ignored by UID commands (RFC 3501 §6.4.8)
  and UID FETCH announces the EXPUNGE in the same answer. Dovecot answers
  OK [EXPUNGEISSUED] to both forms, as some clients treat a NO to FETCH as
  a failure to retry; changing FETCH to that is one line in ``fetch``.

MODSEQ and CHANGEDSINCE (RFC 7162 §3.1.4) run only once a client enabled
CONDSTORE; nubo does not offer it yet, so they are BAD for now.
"""

from __future__ import annotations

import bisect
import dataclasses
import operator
from collections.abc import Iterable
from dataclasses import dataclass

from nubo.mail import message as mime
from nubo.mail.imap import commands as c
from nubo.mail.imap import response
from nubo.mail.imap.commands import Command
from nubo.mail.imap.fetch import FetchAttr, FetchBody, FetchItem
from nubo.mail.imap.selected import SelectedMailbox, flag_list
from nubo.mail.imap.sequence import SequenceSet
from nubo.mail.imap.session import SELECTED, Result, Route, Session, Sync
from nubo.mail.mailstore import MessageRow

# Rows read per query: many when they are small, fewer with the structure
# (a few KB each), fewer again when each brings a blob read.
CHUNK_FLAGS = 2000
CHUNK_INFO = 200
CHUNK_BODY = 50

# Items that read the message's structure; every FetchBody with a section
# does too (see _needs_info).
_INFO_ITEMS = frozenset({"ENVELOPE", "BODY", "BODYSTRUCTURE"})
_INFO_ITEMS |= {"RFC822.HEADER", "RFC822.TEXT"}
_BLOB_ITEMS = frozenset({"RFC822", "RFC822.HEADER", "RFC822.TEXT"})
_SEEN_ITEMS = frozenset({"RFC822", "RFC822.TEXT"})  # RFC 3501 §6.4.5
_LEAN_ITEMS = frozenset({FetchAttr("FLAGS"), FetchAttr("MODSEQ")})

_NO_CONDSTORE = "MODSEQ needs CONDSTORE, which this server does not offer"
_EMPTY = b'""'
_NUL, _NUL_STANDIN = b"\x00", b"\x80"


def target_uids(
    selected: SelectedMailbox, sequence_set: SequenceSet, uid: bool
) -> list[int]:
    """The UIDs a command names, ascending, from this session's map.

    Message numbers above EXISTS are BAD (``ParseError``); UIDs that name no
    message are ignored, and ``UID n:*`` names the last message even when
    n is above it (RFC 3501 §6.4.8, §9)."""
    if uid:
        return selected.existing_uids(sequence_set.resolve(selected.last_uid).ranges)
    numbers = sequence_set.resolve_messages(selected.exists)
    return selected.uids_of_numbers(numbers.ranges)


@dataclass(frozen=True)
class Plan:
    """What one FETCH must read and answer."""

    items: tuple[FetchItem, ...]
    """The items to answer after UID, each once, in the order asked."""
    uid: bool
    info: bool
    blob: bool
    seen: bool
    """Whether the command sets \\Seen (read-write mailbox only)."""

    @property
    def lean(self) -> bool:
        """Whether only FLAGS, UID and MODSEQ are asked."""
        return all(item in _LEAN_ITEMS for item in self.items)

    @property
    def chunk(self) -> int:
        if self.blob:
            return CHUNK_BODY
        return CHUNK_INFO if self.info else CHUNK_FLAGS


def plan(items: Iterable[FetchItem], *, uid: bool, readonly: bool) -> Plan:
    """The plan of a FETCH of ``items`` (UID FETCH when ``uid``)."""
    kept: dict[bytes, FetchItem] = {}
    for item in items:
        if item == FetchAttr("UID"):
            uid = True
        else:
            kept.setdefault(_name(item), item)
    chosen = tuple(kept.values())
    return Plan(
        items=chosen,
        uid=uid,
        info=any(_needs_info(item) for item in chosen),
        blob=any(_needs_blob(item) for item in chosen),
        seen=not readonly and any(_sets_seen(item) for item in chosen),
    )


def _name(item: FetchItem) -> bytes:
    if isinstance(item, FetchBody):
        return item.response_name()
    return item.name.encode("ascii")


def _needs_info(item: FetchItem) -> bool:
    if isinstance(item, FetchBody):
        return bool(item.section.part or item.section.text)
    return item.name in _INFO_ITEMS


def _needs_blob(item: FetchItem) -> bool:
    return isinstance(item, FetchBody) or item.name in _BLOB_ITEMS


def _sets_seen(item: FetchItem) -> bool:
    if isinstance(item, FetchBody):
        return not item.peek
    return item.name in _SEEN_ITEMS


async def fetch(session: Session, command: c.Fetch) -> Result:
    """RFC 3501 §6.4.5 (FETCH) and §6.4.8 (UID FETCH)."""
    selected = session.selected
    assert selected is not None
    if "CONDSTORE" not in session.enabled and (
        command.changedsince is not None or FetchAttr("MODSEQ") in command.items
    ):
        return Result("BAD", _NO_CONDSTORE)
    steps = plan(command.items, uid=command.uid, readonly=selected.readonly)
    items = steps.items
    if command.changedsince is not None and FetchAttr("MODSEQ") not in items:
        items += (FetchAttr("MODSEQ"),)  # RFC 7162 §3.1.4.1
        steps = dataclasses.replace(steps, items=items)
    if steps.seen:
        # Hear of others' changes first, so that setting \Seen is the next
        # MODSEQ and own_change can skip it (no EXPUNGE: RFC 3501 §7.4.1).
        await session.announce(expunge=False)
    uids = target_uids(selected, command.sequence_set, command.uid)

    missing = False
    lean = steps.lean and command.changedsince is None
    for start in range(0, len(uids), steps.chunk):
        chunk = uids[start : start + steps.chunk]
        if lean:
            found = await _lean_chunk(session, selected, steps, chunk)
        else:
            found = await _chunk(session, selected, steps, chunk, command.changedsince)
        if command.changedsince is None and found < len(chunk):
            missing = True

    if not missing:
        return Result("OK", f"{command.label} completed")
    if command.uid:
        return Result("OK", "Some messages were expunged", "EXPUNGEISSUED")
    return Result("NO", "Some messages were expunged", "EXPUNGEISSUED")


async def _lean_chunk(
    session: Session, selected: SelectedMailbox, steps: Plan, chunk: list[int]
) -> int:
    """Answer FLAGS, UID and MODSEQ from four columns (``Mailstore.flags``);
    how many messages of ``chunk`` exist. One format string for every line
    (UID, FLAGS, MODSEQ in that order) keeps 10,000 lines to a few ms."""
    found = await session.mailstore.flags(selected.id, chunk)
    names = [b"UID %d"] if steps.uid else []
    fields = [1] if steps.uid else []
    if FetchAttr("FLAGS") in steps.items:
        names.append(b"FLAGS %s")
        fields.append(2)
    if FetchAttr("MODSEQ") in steps.items:
        names.append(b"MODSEQ (%d)")
        fields.append(3)
    line = b"* %d FETCH (" + b" ".join(names) + b")\r\n"
    pick = operator.itemgetter(0, *fields)

    rendered: dict[frozenset[str], bytes] = {}
    lines: list[bytes] = []
    index = 0
    for uid, modseq, flags in found:
        # Both ascend: each search starts where the last one ended.
        index = bisect.bisect_left(selected.uids, uid, index)
        if index == len(selected.uids) or selected.uids[index] != uid:
            continue
        listed = rendered.get(flags)
        if listed is None:
            listed = rendered[flags] = _flag_list(flags)
        lines.append(line % pick((index + 1, uid, listed, modseq)))
    await session.write_big(b"".join(lines))
    return len(found)


def _flag_list(flags: frozenset[str]) -> bytes:
    """``selected.flag_list`` of a bare set of flags, in the same order."""
    system = sorted(f for f in flags if f.startswith("\\"))
    keywords = sorted(f for f in flags if not f.startswith("\\"))
    return response.flags(system + keywords)


async def _chunk(
    session: Session,
    selected: SelectedMailbox,
    steps: Plan,
    chunk: list[int],
    changed_since: int | None,
) -> int:
    """Answer any items from the rows (and blobs) of ``chunk``; how many
    messages exist."""
    rows = await session.mailstore.messages(
        selected.id, uids=chunk, changed_since=changed_since, with_info=steps.info
    )
    marked: set[int] = set()
    if steps.seen:
        rows, marked = await _mark_seen(session, selected, rows)
    lines: list[bytes] = []
    for row in rows:
        line = await _answer(session, selected, steps, row, row.uid in marked)
        if steps.blob:
            await session.write_big(line)  # one message's bytes at a time
        else:
            lines.append(line)
    await session.write_big(b"".join(lines))
    return len(rows)


async def _mark_seen(
    session: Session, selected: SelectedMailbox, rows: list[MessageRow]
) -> tuple[list[MessageRow], set[int]]:
    """Set \\Seen on the rows that lack it; the rows with their new flags,
    and the UIDs whose flags changed (their answer carries FLAGS)."""
    unseen = [row.uid for row in rows if not row.seen]
    if not unseen:
        return rows, set()
    changed, _ = await session.mailstore.store_flags(
        selected.id, unseen, "add", ("\\Seen",)
    )
    if not changed:
        return rows, set()  # expunged meanwhile, or seen by another session
    selected.own_change(changed[0].modseq)
    new = {row.uid: row for row in changed}
    updated = [
        dataclasses.replace(row, flags=new[row.uid].flags, modseq=new[row.uid].modseq)
        if row.uid in new
        else row
        for row in rows
    ]
    return updated, set(new)


async def _answer(
    session: Session,
    selected: SelectedMailbox,
    steps: Plan,
    row: MessageRow,
    flags_changed: bool,
) -> bytes:
    """``* n FETCH (...)`` for one message."""
    number = selected.number_of(row.uid)
    if number is None:
        return b""  # not in this session's map: never named by the command
    # Limitation: the whole message is read into memory, once, even for a
    # partial of a few octets, and one message after another: a large
    # attachment costs its size in memory for the time of one answer, and
    # on S3 each message costs a round trip. Ranged, streamed reads from
    # the blob store (and a few in flight) would lift both.
    raw = await session.mailstore.read_message(row.blob_id) if steps.blob else b""
    pairs: list[tuple[bytes, bytes]] = []
    if steps.uid:
        pairs.append((b"UID", b"%d" % row.uid))
    if flags_changed and FetchAttr("FLAGS") not in steps.items:
        pairs.append((b"FLAGS", flag_list(row)))
    for item in steps.items:
        pairs.append((_name(item), _value(item, row, raw)))
    return response.fetch(number, pairs)


def _value(item: FetchItem, row: MessageRow, raw: bytes) -> bytes:
    """One item's value (RFC 3501 §7.4.2)."""
    if isinstance(item, FetchBody):
        return _body(item, row, raw)
    name = item.name
    if name == "FLAGS":
        return flag_list(row)
    if name == "INTERNALDATE":
        return response.date_time(row.internal_date)
    if name == "RFC822.SIZE":
        return b"%d" % row.size
    if name == "ENVELOPE":
        return mime.envelope_imap(row.envelope)
    if name in ("BODY", "BODYSTRUCTURE"):
        return mime.bodystructure(row.info, extensible=name == "BODYSTRUCTURE")
    if name == "MODSEQ":
        return b"(%d)" % row.modseq
    if name == "RFC822":
        return _octets(raw)
    text = "HEADER" if name == "RFC822.HEADER" else "TEXT"
    return _octets(
        _slice(raw, mime.section_range(row.info, mime.Section((), text, ())))
    )


def _body(item: FetchBody, row: MessageRow, raw: bytes) -> bytes:
    """BODY[section]<origin.count> (RFC 3501 §6.4.5), byte-exact."""
    section = item.section
    if section.part or section.text:
        spec = mime.Section(section.part, section.text or "", section.fields)
        data = _slice(raw, mime.section_range(row.info, spec))
        if section.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            exclude = section.text == "HEADER.FIELDS.NOT"
            data = mime.header_fields(data, section.fields, exclude=exclude)
    else:
        data = raw
    if item.partial is not None:
        origin, count = item.partial
        data = data[origin : origin + count]
    return _octets(data)


def _slice(raw: bytes, found: tuple[int, int] | None) -> bytes:
    """The octets of a section; empty for a part that does not exist."""
    return b"" if found is None else raw[found[0] : found[1]]


def _octets(data: bytes) -> bytes:
    """Body data as a literal, NUL sent as 0x80 (see the module's doc)."""
    if not data:
        return _EMPTY
    return response.literal(data.replace(_NUL, _NUL_STANDIN))


ROUTES: dict[type[Command], Route] = {
    c.Fetch: Route(fetch, SELECTED, Sync.NO_EXPUNGE, uid_sync=Sync.FULL),
}
