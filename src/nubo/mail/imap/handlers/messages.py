"""Commands that change messages: STORE (RFC 3501 §6.4.6), COPY (RFC 3501
§6.4.7) with COPYUID (RFC 4315 §3), MOVE (RFC 6851) and EXPUNGE (RFC 3501
§6.4.3, UID EXPUNGE RFC 4315 §2.1), each with its UID form (§6.4.8).

Each change is one mailstore transaction. What the session already told
the client of its own change is recorded with ``SelectedMailbox.own_change``
(STORE) or ``SelectedMailbox.remove`` (EXPUNGE, MOVE), so the sync that
follows does not tell it again.

Choices where the RFCs leave room:

- In a mailbox selected read-only (EXAMINE, RFC 3501 §6.3.2) STORE,
  EXPUNGE and MOVE answer ``NO [READ-ONLY]`` (Dovecot answers OK and does
  nothing, which lets a client believe its change was kept). COPY is
  allowed: it changes only the destination.
- STORE answers ``FETCH (FLAGS ...)`` for the messages whose flags changed,
  with UID for UID STORE; a message that already had the flags gets no
  line, as with Dovecot (another session's change to it is announced by
  the sync all the same). ``\\Recent`` cannot be stored (RFC 3501 §2.3.2):
  BAD, as Dovecot.
- STORE by sequence number on a message another session expunged (a
  ghost): the others are changed and the answer is ``NO [EXPUNGEISSUED]``
  (RFC 2180 §4.2, RFC 5530). UID STORE ignores UIDs that no longer
  exist (RFC 3501 §6.4.8) and announces the EXPUNGE after, so it is OK.
  Ghosts are known from the store's events; an expunge whose event has
  not arrived yet when STORE runs is answered OK, and told by the next
  command, as RFC 3501 §6.4.6 lets a server ignore a vanished message.
- COPY and MOVE copy what still exists and say which in COPYUID; a NO
  after copying some would break RFC 3501 §6.4.7's all-or-nothing rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from nubo.mail import flags as fl
from nubo.mail.imap import commands as c
from nubo.mail.imap import response
from nubo.mail.imap.commands import Command, StoreMode
from nubo.mail.imap.handlers.fetch import target_uids
from nubo.mail.imap.selected import SelectedMailbox, flag_list
from nubo.mail.imap.session import SELECTED, Result, Route, Session, Sync
from nubo.mail.mailstore import FlagMode, Mailbox, MessageRow, NoSuchMailbox

_READ_ONLY = Result("NO", "The mailbox is selected read-only", "READ-ONLY")
_TRYCREATE = Result("NO", "no such mailbox", "TRYCREATE")  # RFC 3501 §6.4.7
_NO_CONDSTORE = "UNCHANGEDSINCE needs CONDSTORE, which this server does not offer"
_MODES: dict[StoreMode, FlagMode] = {
    StoreMode.ADD: "add",
    StoreMode.REMOVE: "remove",
    StoreMode.REPLACE: "replace",
}


async def store(session: Session, command: c.Store) -> Result:
    """RFC 3501 §6.4.6 (STORE) and §6.4.8 (UID STORE); UNCHANGEDSINCE is
    RFC 7162 §3.1.3, for a session that enabled CONDSTORE."""
    selected = session.selected
    assert selected is not None
    condstore = "CONDSTORE" in session.enabled
    if command.unchangedsince is not None and not condstore:
        return Result("BAD", _NO_CONDSTORE)
    refusal = _flag_refusal(command.flags)
    if refusal is not None:
        return refusal
    if selected.readonly:
        return _READ_ONLY

    # Hear of other sessions' changes first (no EXPUNGE is sent during
    # STORE, RFC 3501 §7.4.1): expunged messages become ghosts, and this
    # change is the next MODSEQ, which own_change can then skip.
    await session.announce(expunge=False)
    uids = target_uids(selected, command.sequence_set, command.uid)
    changed, failed = await session.mailstore.store_flags(
        selected.id,
        uids,
        _MODES[command.mode],
        command.flags,
        unchanged_since=command.unchangedsince,
    )
    if changed:
        selected.own_change(changed[0].modseq)
    if not command.silent:
        for row in changed:
            await session.write_big(_flags_line(selected, row, command.uid, condstore))

    code = None
    if failed:  # RFC 7162 §3.1.3: the ones changed since UNCHANGEDSINCE
        numbers = failed if command.uid else _numbers(selected, failed)
        code = "MODIFIED " + response.number_set(numbers).decode("ascii")
    if not command.uid and not selected.ghosts.isdisjoint(uids):
        return Result("NO", "Some messages were expunged", "EXPUNGEISSUED")
    return Result("OK", f"{command.label} completed", code)


def _flag_refusal(flags: Sequence[str]) -> Result | None:
    """BAD for a flag that cannot be stored (RFC 3501 §2.3.2, §9)."""
    if any(flag.lower() == fl.RECENT.lower() for flag in flags):
        return Result("BAD", "\\Recent cannot be stored")
    try:
        fl.parse_flags(flags)
    except fl.FlagSyntaxError as exc:
        return Result("BAD", str(exc))
    return None


def _flags_line(
    selected: SelectedMailbox, row: MessageRow, uid: bool, condstore: bool
) -> bytes:
    """``* n FETCH (UID u FLAGS (...))`` for a message STORE changed."""
    number = selected.number_of(row.uid)
    assert number is not None  # the store changed only UIDs of the map
    pairs = [(b"UID", b"%d" % row.uid)] if uid else []
    pairs.append((b"FLAGS", flag_list(row)))
    if condstore:
        pairs.append((b"MODSEQ", b"(%d)" % row.modseq))
    return response.fetch(number, pairs)


def _numbers(selected: SelectedMailbox, uids: Sequence[int]) -> list[int]:
    return [n for uid in uids if (n := selected.number_of(uid)) is not None]


async def copy(session: Session, command: c.Copy) -> Result:
    """RFC 3501 §6.4.7 (COPY), §6.4.8 (UID COPY); COPYUID (RFC 4315 §3)."""
    selected = session.selected
    assert selected is not None and session.user is not None
    uids = target_uids(selected, command.sequence_set, command.uid)
    try:
        target = await session.mailstore.get_mailbox(session.user.id, command.mailbox)
        pairs = await session.mailstore.copy(selected.id, uids, target.id)
    except NoSuchMailbox:
        return _TRYCREATE  # also when deleted between the two steps

    if pairs and target.id == selected.id:
        # The copies are new messages of this mailbox: EXISTS now.
        await session.announce(expunge=True, force=True)
    if not pairs:
        return Result("OK", f"{command.label} completed")
    return Result("OK", f"{command.label} completed", _copyuid(target, pairs))


async def move(session: Session, command: c.Move) -> Result:
    """RFC 6851 §3.3 (MOVE, UID MOVE): ``* OK [COPYUID ...]``, then an
    EXPUNGE per message moved, then the tagged OK (RFC 6851 §4.3)."""
    selected = session.selected
    assert selected is not None and session.user is not None
    if selected.readonly:
        return _READ_ONLY
    uids = target_uids(selected, command.sequence_set, command.uid)
    try:
        target = await session.mailstore.get_mailbox(session.user.id, command.mailbox)
        pairs = await session.mailstore.move(selected.id, uids, target.id)
    except NoSuchMailbox:
        return _TRYCREATE

    if pairs:
        session.write(response.untagged_status("OK", "Moved", _copyuid(target, pairs)))
        for line in selected.remove([source for source, _ in pairs]):
            await session.write_big(line)
    if pairs and target.id == selected.id:
        await session.announce(expunge=True, force=True)  # the new UIDs
    return Result("OK", f"{command.label} completed")


def _copyuid(target: Mailbox, pairs: Sequence[tuple[int, int]]) -> str:
    """``COPYUID uidvalidity source-set dest-set`` (RFC 4315 §3). Both sets
    ascend together, so compressing each keeps them in step."""
    sources = response.number_set(source for source, _ in pairs).decode("ascii")
    copies = response.number_set(copy for _, copy in pairs).decode("ascii")
    return f"COPYUID {target.uidvalidity} {sources} {copies}"


async def expunge(session: Session, command: c.Expunge) -> Result:
    """RFC 3501 §6.4.3 (EXPUNGE) and RFC 4315 §2.1 (UID EXPUNGE): an
    ``* n EXPUNGE`` per message removed, numbers as they are when sent."""
    selected = session.selected
    assert selected is not None
    if selected.readonly:
        return _READ_ONLY
    if command.uids is None:
        gone = await session.mailstore.expunge(selected.id)
    else:
        uids = selected.existing_uids(command.uids.resolve(selected.last_uid).ranges)
        gone = await session.mailstore.expunge(selected.id, uids)
    # Limitation: Mailstore.expunge (and move) return no MODSEQ, so
    # own_change cannot be told and the sync after re-reads the change
    # (three small queries, nothing sent twice: the UIDs are gone from the
    # map). Returning the MODSEQ from the store would save them.
    for line in selected.remove(gone):
        await session.write_big(line)
    return Result("OK", f"{command.label} completed")


ROUTES: dict[type[Command], Route] = {
    c.Store: Route(store, SELECTED, Sync.NO_EXPUNGE, uid_sync=Sync.FULL),
    c.Copy: Route(copy, SELECTED, Sync.FULL),
    c.Move: Route(move, SELECTED, Sync.FULL),
    c.Expunge: Route(expunge, SELECTED, Sync.FULL),
}
