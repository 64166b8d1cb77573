"""The selected mailbox of one IMAP session (RFC 3501 §3.3, §5.5, §7.4.1).

A session keeps only what the protocol makes it remember: the mailbox's
UIDVALIDITY, the message sequence numbers it announced as a compact array
of UIDs (``array('I')``: four octets a message, so 100,000 messages hold
400 KB), and the MODSEQ up to which it has told the client about changes.
Flags, envelopes and bytes stay in the store and are read per command.

``sync`` brings the view up to date from the store: new messages become
``EXISTS``, changed flags unsolicited ``FETCH (UID FLAGS)``, expunged
messages ``EXPUNGE``. It reads only the rows whose MODSEQ moved, and the
expunges since, in one transaction (``Mailstore.changes``), never the whole
mailbox. During FETCH, STORE and SEARCH, EXPUNGE must not be sent
(RFC 3501 §7.4.1): messages expunged meanwhile stay in the map as ghosts,
so sequence numbers keep their meaning, until a command may announce them.
Sessions learn that something changed through ``mailbox:<id>`` events; a
lost event only delays the news until NOOP, which always asks the store.
"""

from __future__ import annotations

import asyncio
import bisect
from array import array
from collections.abc import Iterable, Sequence

from nubo.mail.imap import response
from nubo.mail.mailstore import Mailbox, Mailstore, MessageRow
from nubo.store.events import Subscription


def flag_list(row: MessageRow) -> bytes:
    """A message's flags as ``flag-list``, system flags first."""
    system = sorted(f for f in row.flags if f.startswith("\\"))
    keywords = sorted(f for f in row.flags if not f.startswith("\\"))
    return response.flags(system + keywords)


class SelectedMailbox:
    """One session's view of its selected mailbox."""

    def __init__(
        self,
        mailstore: Mailstore,
        box: Mailbox,
        uids: Iterable[int],
        *,
        readonly: bool,
        events: Subscription | None = None,
    ) -> None:
        self.mailstore = mailstore
        self.id = box.id
        self.name = box.name
        self.uidvalidity = box.uidvalidity
        self.readonly = readonly
        self.modseq = box.highestmodseq
        """Every change up to this MODSEQ has been told to the client."""
        self.uids = array("I", uids)
        self.uidnext = max(box.uidnext, self.uids[-1] + 1 if self.uids else 1)
        self.ghosts: set[int] = set()
        """UIDs expunged elsewhere that the client still counts."""
        self.events = events
        self._dirty = False

    # -- the sequence number map (RFC 3501 §2.3.1.2) ----------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def uid_of(self, number: int) -> int:
        """The UID of message sequence number ``number`` (1-based)."""
        return self.uids[number - 1]

    def number_of(self, uid: int) -> int | None:
        """The message sequence number of ``uid``, or None."""
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def uids_of_numbers(self, ranges: Iterable[tuple[int, int]]) -> list[int]:
        """UIDs of sequence number ranges (already checked against EXISTS)."""
        found: list[int] = []
        for low, high in ranges:
            found.extend(self.uids[low - 1 : high])
        return found

    def existing_uids(self, ranges: Iterable[tuple[int, int]]) -> list[int]:
        """The UIDs in the map that fall in UID ``ranges``, ascending."""
        found: list[int] = []
        for low, high in ranges:
            start = bisect.bisect_left(self.uids, low)
            end = bisect.bisect_right(self.uids, high)
            found.extend(self.uids[start:end])
        return found

    # -- changes this session made itself ----------------------------------

    def own_change(self, modseq: int) -> None:
        """This session made the change numbered ``modseq`` and told the
        client already; when nothing else came in between, skip re-reading
        it (MODSEQ grows by one per change of the mailbox)."""
        if modseq == self.modseq + 1:
            self.modseq = modseq

    def remove(self, uids: Sequence[int]) -> list[bytes]:
        """Drop expunged ``uids`` (ascending) and answer ``EXPUNGE`` for each,
        highest first, so no number shifts before it is sent."""
        lines: list[bytes] = []
        for uid in reversed(uids):
            number = self.number_of(uid)
            if number is None:
                continue
            del self.uids[number - 1]
            self.ghosts.discard(uid)
            lines.append(b"* %d EXPUNGE\r\n" % number)
        return lines

    def append_new(self, uids: Iterable[int]) -> None:
        for uid in sorted(uids):
            if uid > self.last_uid:
                self.uids.append(uid)
        self.uidnext = max(self.uidnext, self.last_uid + 1)

    # -- news from the store -------------------------------------------------

    def poll_events(self) -> bool:
        """Whether an event said the mailbox changed beyond what we told."""
        if self.events is None:
            return True
        while (event := self.events.get_nowait()) is not None:
            if event.lost or int(event.data.get("modseq", 0)) > self.modseq:
                self._dirty = True
        return self._dirty

    async def wait_change(self) -> None:
        """Wait for the next event of this mailbox (IDLE)."""
        if self.events is None:
            await asyncio.Event().wait()  # nothing will come: wait forever
            return
        event = await self.events.get()
        if event.lost or int(event.data.get("modseq", 0)) > self.modseq:
            self._dirty = True

    async def sync(self, *, expunge: bool, force: bool = False) -> list[bytes]:
        """Untagged responses for what changed since the last sync.

        ``expunge`` False keeps expunged messages as ghosts (during FETCH,
        STORE and SEARCH); ``force`` asks the store even without an event.
        Raises ``NoSuchMailbox`` when the mailbox itself is gone.
        """
        if not (self.poll_events() or force or (expunge and self.ghosts)):
            return []
        self._dirty = False
        box, gone, changed = await self.mailstore.changes(self.id, self.modseq)
        self.modseq = box.highestmodseq
        self.ghosts.update(uid for uid in gone if self.number_of(uid))

        # Expunges first: the FETCH lines after them carry the new numbers.
        lines: list[bytes] = []
        if expunge and self.ghosts:
            lines += self.remove(sorted(self.ghosts))
        return lines + self._announce(changed)

    def _announce(self, changed: Sequence[MessageRow]) -> list[bytes]:
        last = self.last_uid
        new = [row.uid for row in changed if row.uid > last]
        lines: list[bytes] = []
        for row in changed:
            number = self.number_of(row.uid)
            if number is None or row.uid in self.ghosts:
                continue
            lines.append(
                b"* %d FETCH (UID %d FLAGS %s)\r\n" % (number, row.uid, flag_list(row))
            )
        if new:
            self.append_new(new)
            lines.append(b"* %d EXISTS\r\n" % self.exists)
        return lines

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
