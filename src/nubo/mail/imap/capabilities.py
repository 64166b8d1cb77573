"""The CAPABILITY list a session advertises (RFC 3501 §6.1.1, §7.2.1).

Before sign-in the list says how to sign in: STARTTLS while the connection
is in the clear (RFC 3501 §6.2.1), AUTH=PLAIN once passwords may be sent
and LOGINDISABLED before (RFC 3501 §6.2.3, §11.1). After sign-in it names
every extension the session honours; clients read it again then, since
RFC 3501 §7.2.1 lets the list change with the state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nubo.mail.imap.session import Session

ALWAYS = (
    "IMAP4rev1",
    "SASL-IR",  # RFC 4959
    "LITERAL+",  # RFC 7888
    "ID",  # RFC 2971
    "ENABLE",  # RFC 5161
    "IDLE",  # RFC 2177
)

SIGNED_IN = (
    "NAMESPACE",  # RFC 2342
    "UIDPLUS",  # RFC 4315
    "MOVE",  # RFC 6851
    "UNSELECT",  # RFC 3691
    "CHILDREN",  # RFC 3348
    "SPECIAL-USE",  # RFC 6154
    "LIST-EXTENDED",  # RFC 5258
    "LIST-STATUS",  # RFC 5819
    "STATUS=SIZE",  # RFC 8438
    "QUOTA",  # RFC 9208
    "QUOTA=RES-STORAGE",  # RFC 9208 §5.1
)


def for_session(session: Session) -> list[str]:
    """The capabilities for the session's state and connection."""
    names = list(ALWAYS)
    if session.user is None:
        if session.can_starttls:
            names.append("STARTTLS")
        names.append("AUTH=PLAIN" if session.secure else "LOGINDISABLED")
        return names
    names += SIGNED_IN
    names.append(f"APPENDLIMIT={session.limits.parser.max_append}")  # RFC 7889
    return names
