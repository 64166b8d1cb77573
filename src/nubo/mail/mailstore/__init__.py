"""The mailstore: mailboxes and messages of every user, over one store.

IMAP, SMTP delivery, the webmail and the export all read and change mail
through ``Mailstore`` (``service``); it holds the rules that must never
differ between them: UIDs strictly ascending and never reused per mailbox
(RFC 3501 §2.3.1.1), a MODSEQ per change (RFC 7162), quotas, the message
bytes kept exactly as they arrived. No protocol code lives here.

- ``service``: the ``Mailstore`` class and its transactions.
- ``hierarchy``: create, rename and delete of mailboxes, in SQL.
- ``sql``: UID and MODSEQ allocation, quota accounting, row selection.
- ``search``: SEARCH criteria as SQL over flags, dates, sizes, UIDs and the
  header index; ``searchtext``: the decoded body text BODY and TEXT match.
- ``names``: mailbox names and special uses (RFC 6154).
- ``models``: the values returned; ``errors``: the exceptions.
- ``nubo.mail.flags``: system flags as bits, keywords (RFC 3501 §2.3.2).

Known gaps: ``expunged`` grows with every expunge and is never trimmed
(QRESYNC could answer from a trimmed log with a full resync); copies and
moves stay within one user's mailboxes; subscriptions live on mailboxes, so
a deleted mailbox loses its subscription.
"""

from nubo.mail.mailstore.errors import (
    InvalidFlag,
    InvalidMailboxName,
    InvalidSpecialUse,
    MailboxExists,
    MailboxHasChildren,
    MailboxProtected,
    MailstoreError,
    NoSuchMailbox,
    QuotaExceeded,
    TemporaryFailure,
    UnknownUser,
)
from nubo.mail.mailstore.models import Mailbox, MailboxStatus, MessageRow, Stored
from nubo.mail.mailstore.names import (
    DEFAULT_MAILBOXES,
    DELIMITER,
    INBOX,
    SPECIAL_USES,
    mailbox_name,
)
from nubo.mail.mailstore.service import FlagMode, Mailstore

__all__ = [
    "DEFAULT_MAILBOXES",
    "DELIMITER",
    "INBOX",
    "SPECIAL_USES",
    "FlagMode",
    "InvalidFlag",
    "InvalidMailboxName",
    "InvalidSpecialUse",
    "Mailbox",
    "MailboxExists",
    "MailboxHasChildren",
    "MailboxProtected",
    "MailboxStatus",
    "Mailstore",
    "MailstoreError",
    "MessageRow",
    "NoSuchMailbox",
    "QuotaExceeded",
    "Stored",
    "TemporaryFailure",
    "UnknownUser",
    "mailbox_name",
]
