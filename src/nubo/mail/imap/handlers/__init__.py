"""IMAP command handlers, one module per command family (RFC 3501 §6).

Each module exports ``ROUTES``: the command types it answers, with the
states they are allowed in and what the session may announce before the
tagged answer (``nubo.mail.imap.session.Route``). Handlers write untagged
lines through the session and return the tagged ``Result``.

- ``basic``: CAPABILITY, NOOP, LOGOUT, CHECK, ID, ENABLE (RFC 3501 §6.1).
- ``auth``: STARTTLS, LOGIN, AUTHENTICATE (RFC 3501 §6.2, RFC 4959).
- ``select``: SELECT, EXAMINE, CLOSE, UNSELECT (RFC 3501 §6.3.1, RFC 3691).
- ``mailboxes``: CREATE, DELETE, RENAME, SUBSCRIBE, LIST, LSUB, STATUS,
  NAMESPACE (RFC 3501 §6.3, RFC 5258, RFC 5819, RFC 6154, RFC 2342).
- ``append``: APPEND, streamed (RFC 3501 §6.3.11, RFC 4315, RFC 7889).
- ``quota``: GETQUOTA, GETQUOTAROOT (RFC 9208).
- ``fetch``: FETCH and UID FETCH (RFC 3501 §6.4.5).
- ``messages``: STORE, COPY, MOVE, EXPUNGE (RFC 3501 §6.4, RFC 6851).
- ``search``: SEARCH and UID SEARCH (RFC 3501 §6.4.4).
- ``idle``: IDLE (RFC 2177).
"""

from __future__ import annotations

from nubo.mail.imap.commands import Command
from nubo.mail.imap.handlers import (
    auth,
    basic,
    fetch,
    idle,
    mailboxes,
    messages,
    quota,
    search,
    select,
)
from nubo.mail.imap.session import Route

ROUTES: dict[type[Command], Route] = {}
for _module in (auth, basic, fetch, idle, mailboxes, messages, quota, search, select):
    ROUTES.update(_module.ROUTES)
