"""Opening and closing a mailbox: SELECT, EXAMINE (RFC 3501 §6.3.1, §6.3.2),
CLOSE (RFC 3501 §6.4.2) and UNSELECT (RFC 3691).

SELECT reads the mailbox row first and its UIDs after, so any change
committed in between has a MODSEQ above the one the session starts from and
is announced by the next sync; nothing is lost between the two reads.
"""

from __future__ import annotations

from nubo.mail.imap import commands as c
from nubo.mail.imap import response
from nubo.mail.imap.commands import Command
from nubo.mail.imap.selected import SelectedMailbox
from nubo.mail.imap.session import (
    AUTHENTICATED,
    OK,
    SELECTED,
    Result,
    Route,
    Session,
    State,
    Sync,
)

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
# Keywords clients use widely (RFC 5788 registry); announcing them lets a
# client show them before any message carries one.
COMMON_KEYWORDS = ("$Forwarded", "$Junk", "$NotJunk", "$MDNSent", "$Phishing")
FLAGS_LINE = b"* FLAGS " + response.flags(SYSTEM_FLAGS + COMMON_KEYWORDS) + b"\r\n"
_PERMANENT_FLAGS = (*SYSTEM_FLAGS, *COMMON_KEYWORDS, "\\*")
PERMANENT = "PERMANENTFLAGS (" + " ".join(_PERMANENT_FLAGS) + ")"


async def select(session: Session, command: c.Select | c.Examine) -> Result:
    """RFC 3501 §6.3.1 (SELECT) and §6.3.2 (EXAMINE, read-only)."""
    assert session.user is not None
    readonly = isinstance(command, c.Examine)
    session.deselect()  # a failed SELECT leaves none selected (§6.3.1)

    store = session.mailstore
    box = await store.get_mailbox(session.user.id, command.mailbox)
    events = store.events.subscribe(f"mailbox:{box.id}")
    try:
        uids = await store.uids(box.id)
        unseen = await store.first_unseen(box.id)
    except BaseException:
        events.close()
        raise
    selected = SelectedMailbox(store, box, uids, readonly=readonly, events=events)
    session.selected = selected
    session.state = State.SELECTED

    session.write(FLAGS_LINE)
    flags_code = "PERMANENTFLAGS ()" if readonly else PERMANENT
    session.write(response.untagged_status("OK", "Flags permitted", flags_code))
    session.write(b"* %d EXISTS\r\n* 0 RECENT\r\n" % selected.exists)
    if unseen is not None and (number := selected.number_of(unseen)) is not None:
        session.write(
            response.untagged_status("OK", "First unseen", f"UNSEEN {number}")
        )
    validity = f"UIDVALIDITY {selected.uidvalidity}"
    session.write(response.untagged_status("OK", "UIDs valid", validity))
    uidnext = f"UIDNEXT {selected.uidnext}"
    session.write(response.untagged_status("OK", "Predicted next UID", uidnext))
    if readonly:
        return Result("OK", "EXAMINE completed", "READ-ONLY")
    return Result("OK", "SELECT completed", "READ-WRITE")


async def close(session: Session, _command: c.Close) -> Result:
    """RFC 3501 §6.4.2: expunge \\Deleted without telling, then deselect."""
    selected = session.selected
    assert selected is not None
    if not selected.readonly:
        await session.mailstore.expunge(selected.id)
    session.deselect()
    return OK


async def unselect(session: Session, _command: c.Unselect) -> Result:
    """RFC 3691 §2: deselect, expunging nothing."""
    session.deselect()
    return OK


ROUTES: dict[type[Command], Route] = {
    c.Select: Route(select, AUTHENTICATED, Sync.NONE),
    c.Examine: Route(select, AUTHENTICATED, Sync.NONE),
    c.Close: Route(close, SELECTED, Sync.NONE),
    c.Unselect: Route(unselect, SELECTED, Sync.NONE),
}
