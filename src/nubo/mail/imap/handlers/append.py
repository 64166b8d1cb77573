"""APPEND, streamed (RFC 3501 §6.3.11), answered with APPENDUID (RFC 4315
§3), within APPENDLIMIT (RFC 7889) and the user's quota (RFC 9208).

The session calls ``append`` on the parser's ``AppendStart``, before any
octet of the message (see ``nubo.mail.imap.parser``). Everything that can
be refused is refused then, so a client with a synchronizing literal never
sends a message that will be thrown away: a mailbox that does not exist
(NO [TRYCREATE]), a message above the user's quota (NO [OVERQUOTA]), a flag
that cannot be stored, an empty message (Dovecot refuses those too). A
message above APPENDLIMIT never gets here: the parser answers it with
NO [TOOBIG] (RFC 7889 §4). A non-synchronizing literal (LITERAL+, RFC 7888)
comes whatever the answer, so its octets are read and dropped before the
refusal, never taken for commands.
"""

from __future__ import annotations

import logging

from nubo.accounts import format_size
from nubo.mail import flags as fl
from nubo.mail.imap import response
from nubo.mail.imap.commands import Append, Command
from nubo.mail.imap.parser import AppendData, AppendStart, NeedContinuation, Reject
from nubo.mail.imap.session import ANSWERED, Result, Route, Session
from nubo.mail.mailstore import NoSuchMailbox

log = logging.getLogger(__name__)

ROUTES: dict[type[Command], Route] = {}
"""Empty: APPEND comes as ``AppendStart`` and the session calls ``append``."""

_TRYCREATE = Result("NO", "no such mailbox", "TRYCREATE")  # RFC 3501 §6.3.11


async def append(session: Session, start: AppendStart) -> Result:
    """RFC 3501 §6.3.11: refuse early, read the literal, store, answer
    OK [APPENDUID uidvalidity uid] (RFC 4315 §3)."""
    try:
        refusal = await _refusal(session, start)
    except Exception:
        await _skip(session, start)  # the store failed: the session answers
        raise
    if refusal is not None:
        return await _skip(session, start) or refusal

    # Limitation: the message is held in memory, up to APPENDLIMIT octets
    # and twice that while it is copied for the store, because the
    # mailstore parses and stores bytes; a streaming Mailstore.append taking
    # chunks would bound a session by one chunk.
    received = await _receive(session, start, keep=True)
    if not isinstance(received, bytearray):
        return received
    raw = bytes(received)
    del received

    assert session.user is not None
    store = session.mailstore
    try:
        stored = await store.append(
            session.user.id,
            start.mailbox,
            raw,
            flags=start.flags,
            internal_date=start.date_time,
        )
    except NoSuchMailbox:
        return _TRYCREATE  # deleted while the message came
    selected = session.selected
    if selected is not None and selected.id == stored.mailbox_id:
        # RFC 3501 §6.3.11: the client learns of it at once (EXISTS), even
        # when the store's event comes back later through PostgreSQL.
        await session.announce(expunge=True, force=True)
    code = f"APPENDUID {stored.uidvalidity} {stored.uid}"
    return Result("OK", "APPEND completed", code)


async def _refusal(session: Session, start: AppendStart) -> Result | None:
    """Why the message cannot be stored, known before it is sent; or None."""
    if session.user is None:
        return Result("BAD", "Sign in first (LOGIN or AUTHENTICATE)")
    if start.size == 0:
        return Result("NO", "an empty message cannot be stored")
    try:
        fl.parse_flags(start.flags)
    except fl.FlagSyntaxError as exc:
        return Result("BAD", str(exc))

    store = session.mailstore
    try:
        await store.get_mailbox(session.user.id, start.mailbox)
    except NoSuchMailbox:
        return _TRYCREATE
    used, quota = await store.usage(session.user.id)
    if quota and used + start.size > quota:
        # The same words as the store's own refusal (mailstore.sql.charge).
        if start.size > quota:
            text = f"message larger than the {format_size(quota)} quota"
        else:
            text = f"mailbox full: {format_size(quota)} quota"
        return Result("NO", text, "OVERQUOTA")
    return None


async def _skip(session: Session, start: AppendStart) -> Result | None:
    """Make sure the message's octets are never read as commands: a
    synchronizing literal will not come once refused (RFC 3501 §7.5), a
    non-synchronizing one comes anyway and is read and dropped. The answer
    of a ``Reject`` that ended it, if one did."""
    if start.synchronizing:
        session.parser.cancel()
        return None
    received = await _receive(session, start, keep=False)
    return None if isinstance(received, bytearray) else received


async def _receive(
    session: Session, start: AppendStart, *, keep: bool
) -> bytearray | Result:
    """Read the message up to the ``Append`` event; the octets (if
    ``keep``), or the answer to a ``Reject`` that ends it."""
    message = bytearray()
    while True:
        event = await session.next_event()
        if isinstance(event, AppendData):
            if keep:
                message += event.data
        elif isinstance(event, NeedContinuation):
            session.write(response.continuation("Ready for literal data"))
            await session.flush()
        elif isinstance(event, Append):
            return message
        elif isinstance(event, Reject):
            return await _rejected(session, start, event)
        else:
            # The parser streams APPEND's octets and then ends it; nothing
            # else can come (see nubo.mail.imap.parser).
            log.warning("imap append unexpected event=%s", type(event).__name__)


async def _rejected(session: Session, start: AppendStart, event: Reject) -> Result:
    """The parser refused the end of APPEND (say, a second message, as
    MULTIAPPEND is not offered): the message is dropped and the refusal is
    the answer."""
    if event.fatal or event.tag not in (None, start.tag):
        await session.on_reject(event)
        return ANSWERED
    return Result(event.status, event.text, event.code)
