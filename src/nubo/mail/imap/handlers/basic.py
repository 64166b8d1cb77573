"""Commands of any state: CAPABILITY, NOOP, LOGOUT (RFC 3501 §6.1), CHECK
(RFC 3501 §6.4.1), ID (RFC 2971) and ENABLE (RFC 5161)."""

from __future__ import annotations

import logging
import re

from nubo import __version__
from nubo.mail.imap import commands as c
from nubo.mail.imap import response
from nubo.mail.imap.commands import Command
from nubo.mail.imap.session import (
    ANY,
    AUTHENTICATED,
    OK,
    SELECTED,
    Result,
    Route,
    Session,
    State,
    Sync,
)

log = logging.getLogger(__name__)

# ENABLE answers only for extensions nubo has that RFC 5161 lets a client
# turn on; none of them yet, so ENABLED lists what it could.
ENABLEABLE: frozenset[str] = frozenset()
_SAFE_ID = re.compile(r"[^\x20-\x7e]")


async def capability(session: Session, _command: c.Capability) -> Result:
    """RFC 3501 §6.1.1."""
    session.write(b"* CAPABILITY " + session.capability_line().encode() + b"\r\n")
    return OK


async def noop(session: Session, _command: c.Noop) -> Result:
    """RFC 3501 §6.1.2: the polling command, so it always asks the store
    rather than waiting for an event."""
    await session.announce(expunge=True, force=True)
    return OK


async def check(session: Session, _command: c.Check) -> Result:
    """RFC 3501 §6.4.1: every change is already committed; CHECK is NOOP."""
    await session.announce(expunge=True, force=True)
    return OK


async def logout(session: Session, _command: c.Logout) -> Result:
    """RFC 3501 §6.1.3: BYE, then the tagged OK, then the close."""
    session.write(response.untagged_status("BYE", "nubo says goodbye"))
    session.deselect()
    session.state = State.LOGOUT
    return OK


async def ident(session: Session, command: c.Id) -> Result:
    """RFC 2971: name the server; log what the client says of itself, in
    printable ASCII only, as an operator's aid to find odd clients."""
    if command.fields:
        said = " ".join(
            f"{_SAFE_ID.sub('?', k)[:30]}={_SAFE_ID.sub('?', v or '')[:60]}"
            for k, v in command.fields[:10]
        )
        log.info("imap client id peer=%s %s", session.peer, said)
    ours = [
        response.string("name"),
        response.string("nubo"),
        response.string("version"),
        response.string(__version__),
    ]
    session.write(b"* ID " + response.paren(ours) + b"\r\n")
    return OK


async def enable(session: Session, command: c.Enable) -> Result:
    """RFC 5161 §3.1: ENABLED names those that were turned on now."""
    turned_on = [
        name
        for name in command.capabilities
        if name.upper() in ENABLEABLE and name.upper() not in session.enabled
    ]
    session.enabled.update(name.upper() for name in turned_on)
    session.write(b" ".join([b"* ENABLED", *(n.encode() for n in turned_on)]) + b"\r\n")
    return OK


ROUTES: dict[type[Command], Route] = {
    c.Capability: Route(capability, ANY),
    c.Noop: Route(noop, ANY),
    c.Logout: Route(logout, ANY, Sync.NONE),
    c.Check: Route(check, SELECTED),
    c.Id: Route(ident, ANY),
    c.Enable: Route(enable, AUTHENTICATED),
}
