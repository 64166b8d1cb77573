"""Commands on mailboxes as names: CREATE, DELETE, RENAME (RFC 3501 §6.3.3 to
§6.3.5), SUBSCRIBE, UNSUBSCRIBE (§6.3.6, §6.3.7), LIST (§6.3.8) with
LIST-EXTENDED (RFC 5258), CHILDREN (RFC 3348), SPECIAL-USE (RFC 6154) and
LIST-STATUS (RFC 5819), LSUB (§6.3.9), STATUS (§6.3.10, RFC 8438 SIZE) and
NAMESPACE (RFC 2342).

One personal namespace with the prefix "" and the delimiter "/"
(``nubo.mail.mailstore.DELIMITER``). The mailstore keeps every superior name
as a mailbox of its own: CREATE and RENAME make the missing ones and DELETE
refuses a mailbox that has inferiors. So every name LIST finds is
selectable, ``\\Noselect`` appears only in LSUB (a superior that is not
subscribed) and in LIST's answer about the root, and ``\\NonExistent``
(RFC 5258 §3) never applies, as subscriptions live on mailboxes.

Names go out in modified UTF-7 (``response.mailbox``); patterns are matched
against the decoded names (``nubo.mail.imap.wildcard``). A user has tens of
mailboxes, rarely hundreds, so LIST reads them all and matches in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from nubo.mail.imap import commands as c
from nubo.mail.imap import response
from nubo.mail.imap.commands import Command
from nubo.mail.imap.session import AUTHENTICATED, Result, Route, Session
from nubo.mail.imap.wildcard import Pattern
from nubo.mail.mailstore import DELIMITER, Mailbox, MailboxStatus, NoSuchMailbox
from nubo.mail.mailstore.names import is_inferior, parents

_DELIMITER = response.string(DELIMITER)
# Selection options that choose mailboxes; RECURSIVEMATCH and REMOTE only
# modify (RFC 5258 §3.1), and nubo has no remote mailboxes.
_CRITERIA = ("SUBSCRIBED", "SPECIAL-USE")


def _user_id(session: Session) -> int:
    assert session.user is not None
    return session.user.id


def _mailbox(session: Session, name: str) -> bytes:
    return response.mailbox(name, utf8=session.parser.utf8)


# -- CREATE, DELETE, RENAME ---------------------------------------------------


async def create(session: Session, command: c.Create) -> Result:
    """RFC 3501 §6.3.3: superior names are created as needed; a trailing
    delimiter only declares that inferiors will follow, so "Work/" creates
    "Work". INBOX exists already: NO [ALREADYEXISTS] (RFC 5530)."""
    name = command.mailbox.removesuffix(DELIMITER)
    await session.mailstore.create_mailbox(_user_id(session), name)
    return Result("OK", "CREATE completed")


async def delete(session: Session, command: c.Delete) -> Result:
    """RFC 3501 §6.3.4: INBOX and mailboxes with inferiors are refused
    (NO [CANNOT]), as Dovecot refuses the latter.

    Deleting the selected mailbox leaves the session in the authenticated
    state, told by ``* OK [CLOSED]`` (RFC 9051 §7.1); Dovecot disconnects
    instead, which costs the client its session for no need.
    """
    store = session.mailstore
    box = await store.get_mailbox(_user_id(session), command.mailbox)
    await store.delete_mailbox(_user_id(session), box.name)
    if session.selected is not None and session.selected.id == box.id:
        session.deselect()
        session.write(
            response.untagged_status("OK", "Mailbox deleted, none selected", "CLOSED")
        )
    return Result("OK", "DELETE completed")


async def rename(session: Session, command: c.Rename) -> Result:
    """RFC 3501 §6.3.5: inferiors move with the mailbox, which keeps its
    UIDVALIDITY. Renaming INBOX moves its messages to a new mailbox and
    leaves INBOX empty; a session with INBOX selected sees them expunged."""
    user_id = _user_id(session)
    await session.mailstore.rename_mailbox(user_id, command.mailbox, command.new_name)
    return Result("OK", "RENAME completed")


# -- SUBSCRIBE, UNSUBSCRIBE ---------------------------------------------------


async def subscribe(session: Session, command: c.Subscribe) -> Result:
    """RFC 3501 §6.3.6. Limitation: only an existing mailbox can be
    subscribed (NO [NONEXISTENT] otherwise), as RFC 3501 allows; the
    subscription lives on the mailbox (see ``Mailstore.set_subscribed``)."""
    await session.mailstore.set_subscribed(_user_id(session), command.mailbox, True)
    return Result("OK", "SUBSCRIBE completed")


async def unsubscribe(session: Session, command: c.Unsubscribe) -> Result:
    """RFC 3501 §6.3.7."""
    await session.mailstore.set_subscribed(_user_id(session), command.mailbox, False)
    return Result("OK", "UNSUBSCRIBE completed")


# -- LIST, LSUB ---------------------------------------------------------------


async def list_(session: Session, command: c.List) -> Result:
    """RFC 3501 §6.3.8 and RFC 5258: every mailbox whose name matches one
    of the patterns (reference prepended) and meets the selection options.

    \\HasChildren or \\HasNoChildren is always sent (RFC 5258 §4 lets a
    server give it unasked), and so are special-use attributes (RFC 6154
    §2); \\Subscribed only when SUBSCRIBED is asked for, as select or
    return option. With RECURSIVEMATCH (RFC 5258 §3.5) a matching mailbox
    that does not meet the criteria is still listed when an inferior that
    the patterns miss does, and a listed mailbox with any inferior that
    meets them carries CHILDINFO, as Dovecot answers.
    """
    patterns = [Pattern(command.reference + p) for p in command.patterns if p]
    if not patterns:
        if not command.select_options:
            session.write(_root_line(session, command.reference))
        return Result("OK", "LIST completed")

    boxes = await session.mailstore.list_mailboxes(_user_id(session))
    selection = _Selection(command, patterns, boxes)
    show_subscribed = "SUBSCRIBED" in command.select_options | command.return_options
    superiors = _superiors(boxes)
    for box in boxes:
        found = selection.judge(box)
        if found is None:
            continue
        chosen, childinfo = found
        attributes = _attributes(box, superiors, subscribed=show_subscribed)
        line = b"* LIST %s %s %s" % (
            response.flags(attributes),
            _DELIMITER,
            _mailbox(session, box.name),
        )
        if childinfo:
            line += b" (CHILDINFO (%s))" % b" ".join(
                response.string(name) for name in selection.criteria
            )
        await session.write_big(line + b"\r\n")
        if chosen and "STATUS" in command.return_options:
            await _list_status(session, box, command.status_items)
    return Result("OK", "LIST completed")


class _Selection:
    """Which mailboxes one LIST returns (RFC 5258 §3)."""

    def __init__(
        self, command: c.List, patterns: Sequence[Pattern], boxes: Sequence[Mailbox]
    ) -> None:
        self.patterns = patterns
        self.boxes = boxes
        self.criteria = [name for name in _CRITERIA if name in command.select_options]
        self.recursive = "RECURSIVEMATCH" in command.select_options

    def matches(self, box: Mailbox) -> bool:
        return any(pattern.matches(box.name) for pattern in self.patterns)

    def meets(self, box: Mailbox) -> bool:
        return all(_meets(box, criterion) for criterion in self.criteria)

    def judge(self, box: Mailbox) -> tuple[bool, bool] | None:
        """None if ``box`` is not listed; else (whether it meets the
        criteria, whether it gets CHILDINFO)."""
        if not self.matches(box):
            return None
        chosen = self.meets(box)
        if not (self.recursive and self.criteria):
            return (True, False) if chosen else None
        meeting = [
            other
            for other in self.boxes
            if is_inferior(other.name, box.name) and self.meets(other)
        ]
        if not chosen and all(self.matches(other) for other in meeting):
            return None
        return chosen, bool(meeting)


def _root_line(session: Session, reference: str) -> bytes:
    """RFC 3501 §6.3.8: an empty pattern asks for the delimiter and the
    root of the reference: its first level with the delimiter, or ""."""
    first, found, _ = reference.partition(DELIMITER)
    root = first + DELIMITER if found else ""
    return b"* LIST (\\Noselect) %s %s\r\n" % (_DELIMITER, _mailbox(session, root))


def _superiors(boxes: Iterable[Mailbox]) -> set[str]:
    """Names that have inferiors (CHILDREN, RFC 3348)."""
    found: set[str] = set()
    for box in boxes:
        found.update(parents(box.name))
    return found


def _meets(box: Mailbox, criterion: str) -> bool:
    if criterion == "SUBSCRIBED":
        return box.subscribed
    return box.special_use is not None  # SPECIAL-USE, RFC 6154 §3


def _attributes(box: Mailbox, superiors: set[str], *, subscribed: bool) -> list[str]:
    attributes = []
    if subscribed and box.subscribed:
        attributes.append("\\Subscribed")
    has = box.name in superiors
    attributes.append("\\HasChildren" if has else "\\HasNoChildren")
    if box.special_use is not None:
        attributes.append("\\" + box.special_use)
    return attributes


async def _list_status(session: Session, box: Mailbox, items: Sequence[str]) -> None:
    """RFC 5819 §2: the STATUS of a listed mailbox right after its LIST."""
    try:
        status = await session.mailstore.status(box.id)
    except NoSuchMailbox:
        return  # deleted since it was listed: no STATUS to tell
    await session.write_big(_status_line(session, box.name, status, items))


async def lsub(session: Session, command: c.Lsub) -> Result:
    """RFC 3501 §6.3.9: subscribed names that match. A superior that is not
    subscribed but has a subscribed inferior the pattern misses (the "%"
    case) is listed as \\Noselect, as the RFC asks."""
    if not command.pattern:
        return Result("OK", "LSUB completed")
    pattern = Pattern(command.reference + command.pattern)
    boxes = await session.mailstore.list_mailboxes(_user_id(session))
    subscribed = [box.name for box in boxes if box.subscribed]
    for box in boxes:
        if not pattern.matches(box.name):
            continue
        if box.subscribed:
            attributes = b"()"
        elif any(
            is_inferior(name, box.name) and not pattern.matches(name)
            for name in subscribed
        ):
            attributes = b"(\\Noselect)"
        else:
            continue
        await session.write_big(
            b"* LSUB %s %s %s\r\n"
            % (attributes, _DELIMITER, _mailbox(session, box.name))
        )
    return Result("OK", "LSUB completed")


# -- STATUS, NAMESPACE --------------------------------------------------------


async def status(session: Session, command: c.Status) -> Result:
    """RFC 3501 §6.3.10, from one query of the store. RECENT is always 0:
    nubo keeps no \\Recent (RFC 9051 dropped it), as SELECT says."""
    store = session.mailstore
    box = await store.get_mailbox(_user_id(session), command.mailbox)
    found = await store.status(box.id)
    session.write(_status_line(session, box.name, found, command.items))
    return Result("OK", "STATUS completed")


def _status_line(
    session: Session, name: str, found: MailboxStatus, items: Sequence[str]
) -> bytes:
    values = {
        "MESSAGES": found.messages,
        "RECENT": 0,
        "UIDNEXT": found.uidnext,
        "UIDVALIDITY": found.uidvalidity,
        "UNSEEN": found.unseen,
        "DELETED": found.deleted,  # RFC 9051 §6.3.11
        "SIZE": found.size,  # RFC 8438
        "HIGHESTMODSEQ": found.highestmodseq,  # RFC 7162 §3.1.6
        "APPENDLIMIT": session.limits.parser.max_append,  # RFC 7889 §3
    }
    pairs = b" ".join(b"%s %d" % (item.encode(), values[item]) for item in items)
    return b"* STATUS %s (%s)\r\n" % (_mailbox(session, name), pairs)


async def namespace(session: Session, _command: c.Namespace) -> Result:
    """RFC 2342 §5: one personal namespace, no other users' nor shared."""
    session.write(b'* NAMESPACE (("" %s)) NIL NIL\r\n' % _DELIMITER)
    return Result("OK", "NAMESPACE completed")


ROUTES: dict[type[Command], Route] = {
    c.Create: Route(create, AUTHENTICATED),
    c.Delete: Route(delete, AUTHENTICATED),
    c.Rename: Route(rename, AUTHENTICATED),
    c.Subscribe: Route(subscribe, AUTHENTICATED),
    c.Unsubscribe: Route(unsubscribe, AUTHENTICATED),
    c.List: Route(list_, AUTHENTICATED),
    c.Lsub: Route(lsub, AUTHENTICATED),
    c.Status: Route(status, AUTHENTICATED),
    c.Namespace: Route(namespace, AUTHENTICATED),
}
