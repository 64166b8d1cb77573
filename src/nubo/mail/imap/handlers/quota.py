"""GETQUOTA and GETQUOTAROOT (RFC 9208 §4.2, §4.3): one quota per user.

Every mailbox of a user is under one quota root, named "", with the one
resource STORAGE (RFC 9208 §5.1) in units of 1024 octets: usage rounded up,
so a full mailbox never looks as if it had room, and the limit rounded down.
A user without a quota (0, unlimited) has no quota root at all: QUOTAROOT
names none and GETQUOTA "" is refused, as RFC 9208 §4.3 describes for a
mailbox under no root. Dovecot answers the unlimited case with a bare
"OK No quota." and no QUOTAROOT, which tells a client less.

SETQUOTA (RFC 9208 §4.1.3) is not offered; the parser refuses it. Quotas
are set by the operator (``nubo user quota``).
"""

from __future__ import annotations

from nubo.mail.imap import commands as c
from nubo.mail.imap import response
from nubo.mail.imap.commands import Command
from nubo.mail.imap.session import AUTHENTICATED, Result, Route, Session

ROOT = ""
_KIB = 1024


async def getquota(session: Session, command: c.GetQuota) -> Result:
    """RFC 9208 §4.2: the usage and limit of a quota root."""
    assert session.user is not None
    used, limit = await session.mailstore.usage(session.user.id)
    if command.root != ROOT or not limit:
        return Result("NO", "no such quota root", "NONEXISTENT")
    session.write(_quota_line(used, limit))
    return Result("OK", "GETQUOTA completed")


async def getquotaroot(session: Session, command: c.GetQuotaRoot) -> Result:
    """RFC 9208 §4.3: the roots of a mailbox, then each root's QUOTA."""
    assert session.user is not None
    store = session.mailstore
    box = await store.get_mailbox(session.user.id, command.mailbox)
    used, limit = await store.usage(session.user.id)
    line = b"* QUOTAROOT " + response.mailbox(box.name, utf8=session.parser.utf8)
    if not limit:
        session.write(line + b"\r\n")
        return Result("OK", "GETQUOTAROOT completed")
    session.write(line + b" " + response.string(ROOT) + b"\r\n")
    session.write(_quota_line(used, limit))
    return Result("OK", "GETQUOTAROOT completed")


def _quota_line(used: int, limit: int) -> bytes:
    used_kib = -(-used // _KIB)
    return b"* QUOTA %s (STORAGE %d %d)\r\n" % (
        response.string(ROOT),
        used_kib,
        limit // _KIB,
    )


ROUTES: dict[type[Command], Route] = {
    c.GetQuota: Route(getquota, AUTHENTICATED),
    c.GetQuotaRoot: Route(getquotaroot, AUTHENTICATED),
}
