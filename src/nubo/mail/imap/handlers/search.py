"""SEARCH and UID SEARCH (RFC 3501 §6.4.4, §6.4.8).

The client's keys (``nubo.mail.imap.search``) become the mailstore's
protocol-free criteria (``nubo.mail.mailstore.search``), which run as SQL.
Message sequence numbers become the UIDs they stand for in this session's
map, so the store never sees them. The answer names only messages the
client has been told of, those in the map, and never a ghost (expunged by
another session, not yet announced): ``* SEARCH`` with sequence numbers,
or UIDs for UID SEARCH, ascending (RFC 3501 §7.2.5).

No EXPUNGE may be sent during SEARCH (RFC 3501 §7.4.1), as it would shift
the numbers just answered; UID SEARCH may announce them (``Sync.FULL``).
No ESEARCH (RFC 4731): it is not advertised.

MODSEQ (RFC 7162 §3.1.5) runs only in a session that enabled CONDSTORE;
nubo does not advertise CONDSTORE yet, so it is BAD everywhere for now.
CHARSET other than US-ASCII and UTF-8 is refused by the parser with
NO [BADCHARSET (US-ASCII UTF-8)].
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from nubo.mail.imap import commands as c
from nubo.mail.imap import response
from nubo.mail.imap import search as keys
from nubo.mail.imap.commands import Command
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.selected import SelectedMailbox
from nubo.mail.imap.session import SELECTED, Result, Route, Session, Sync
from nubo.mail.mailstore import search as q


async def search(session: Session, command: c.Search) -> Result:
    """RFC 3501 §6.4.4 (SEARCH) and §6.4.8 (UID SEARCH)."""
    selected = session.selected
    assert selected is not None
    condstore = "CONDSTORE" in session.enabled
    criteria = to_criteria(command.key, selected, condstore=condstore)

    uids: list[int] = []
    if selected.exists:
        found = await session.mailstore.search(selected.id, _within(selected, criteria))
        # Every stored UID up to the last one announced is in the map (UIDs
        # only grow), so only ghosts, expunged since, are left out.
        uids = [uid for uid in found if uid not in selected.ghosts]
    numbers = [] if command.uid else _numbers(selected, uids)

    # RFC 7162 §3.1.5: with MODSEQ in the keys, the answer ends with the
    # highest MODSEQ of the messages found (reachable once CONDSTORE is).
    modseq = None
    if condstore and uids and _has_modseq(command.key):
        rows = await session.mailstore.messages(selected.id, uids=uids, with_info=False)
        modseq = max((row.modseq for row in rows), default=None)
    await session.write_big(response.search(uids if command.uid else numbers, modseq))
    return Result("OK", f"{command.label} completed")


def _within(selected: SelectedMailbox, criteria: q.Criterion) -> q.Criterion:
    """``criteria`` limited to the UIDs the session knows (a message stored
    since its last sync has no sequence number yet)."""
    parts = criteria.parts if isinstance(criteria, q.And) else (criteria,)
    return q.And((*parts, q.Uids(((1, selected.last_uid),))))


def _numbers(selected: SelectedMailbox, uids: Sequence[int]) -> list[int]:
    """Sequence numbers of ``uids`` (ascending) in the map, ghosts left out."""
    numbers: list[int] = []
    index = 0
    for uid in uids:
        index = bisect.bisect_left(selected.uids, uid, index)
        if index == len(selected.uids):
            break
        if selected.uids[index] == uid and uid not in selected.ghosts:
            numbers.append(index + 1)
    return numbers


def to_criteria(
    key: keys.SearchKey, selected: SelectedMailbox, *, condstore: bool
) -> q.Criterion:
    """The mailstore's criteria for a client's ``search-key`` tree; ParseError
    (BAD) for a sequence number above EXISTS or MODSEQ without CONDSTORE."""
    if isinstance(key, keys.All):
        return q.EVERY
    if isinstance(key, keys.And):
        return q.And(
            tuple(to_criteria(k, selected, condstore=condstore) for k in key.keys)
        )
    if isinstance(key, keys.Or):
        left = to_criteria(key.left, selected, condstore=condstore)
        return q.Or((left, to_criteria(key.right, selected, condstore=condstore)))
    if isinstance(key, keys.Not):
        return q.Not(to_criteria(key.key, selected, condstore=condstore))
    if isinstance(key, keys.Flag):
        return _flag(key)
    if isinstance(key, keys.Header):
        return q.Header(key.field, key.value)
    if isinstance(key, keys.Text):
        return q.Text(key.value, headers=not key.body_only)
    if isinstance(key, keys.Date):
        return q.Date(key.relation, key.date, key.sent)
    if isinstance(key, keys.Size):
        return q.Size("larger" if key.larger else "smaller", key.size)
    if isinstance(key, keys.Messages):
        return _messages(key, selected)
    if not condstore:
        raise ParseError("MODSEQ needs CONDSTORE, which this server does not offer")
    return q.ModSeq(key.modseq)


def _flag(key: keys.Flag) -> q.Criterion:
    # nubo keeps no \Recent (RFC 9051 dropped it): no message is recent,
    # so RECENT and NEW match nothing and OLD everything.
    if key.flag.lower() == "\\recent":
        return q.NOTHING if key.present else q.EVERY
    flag = q.Flag(key.flag)
    return flag if key.present else q.Not(flag)


def _messages(key: keys.Messages, selected: SelectedMailbox) -> q.Uids:
    """A sequence set as UID ranges: the UIDs between two sequence numbers
    are exactly the map's, as the map holds every UID up to its last."""
    if key.uid:
        return q.Uids(key.numbers.resolve(selected.last_uid).ranges)
    if not selected.exists:
        # "SEARCH 1:*" in an empty mailbox finds nothing, as with Dovecot;
        # FETCH and STORE of such a set stay BAD (no message is named).
        return q.Uids(())
    resolved = key.numbers.resolve_messages(selected.exists)
    return q.Uids(
        tuple(
            (selected.uid_of(low), selected.uid_of(high))
            for low, high in resolved.ranges
        )
    )


def _has_modseq(key: keys.SearchKey) -> bool:
    if isinstance(key, keys.ModSeq):
        return True
    if isinstance(key, keys.And):
        return any(_has_modseq(k) for k in key.keys)
    if isinstance(key, keys.Or):
        return _has_modseq(key.left) or _has_modseq(key.right)
    if isinstance(key, keys.Not):
        return _has_modseq(key.key)
    return False


ROUTES: dict[type[Command], Route] = {
    c.Search: Route(search, SELECTED, Sync.NO_EXPUNGE, uid_sync=Sync.FULL),
}
