"""What the mailstore refuses, as exceptions of its own.

::

    MailstoreError            a mail operation was refused
     ├── NoSuchMailbox        no mailbox of that name (or id) for the user
     │    └── UnknownUser     the user itself does not exist
     ├── MailboxExists        CREATE or RENAME onto a name in use
     ├── InvalidMailboxName   empty levels, control characters, too long...
     ├── MailboxProtected     DELETE of INBOX
     ├── MailboxHasChildren   DELETE of a mailbox with inferior names
     ├── InvalidSpecialUse    unknown or already used (RFC 6154 USEATTR)
     ├── InvalidFlag          a malformed keyword or reserved system flag
     ├── QuotaExceeded        the user's quota has no room for the bytes
     └── TemporaryFailure     the store failed; trying again may work

Each carries a short English reason, fit to end an IMAP NO or an SMTP reply
(never message contents). Only ``deliver`` turns store failures into
``TemporaryFailure`` (one per recipient); elsewhere they propagate as the
SQLAlchemy or blob store errors they are.
"""

from __future__ import annotations


class MailstoreError(Exception):
    """A mail operation was refused; ``str()`` is the reason."""

    temporary = False


class NoSuchMailbox(MailstoreError):
    """No such mailbox (IMAP answers NO [NONEXISTENT] or [TRYCREATE])."""


class UnknownUser(NoSuchMailbox):
    """The user does not exist (any more)."""


class MailboxExists(MailstoreError):
    """The name is taken (IMAP answers NO [ALREADYEXISTS])."""


class InvalidMailboxName(MailstoreError):
    """The name breaks the naming rules of ``nubo.mail.mailstore.names``."""


class MailboxProtected(MailstoreError):
    """INBOX cannot be deleted (RFC 3501 §6.3.4)."""


class MailboxHasChildren(MailstoreError):
    """The mailbox has inferior names; delete those first."""


class InvalidSpecialUse(MailstoreError):
    """Unknown special use, or one another mailbox already has (RFC 6154 §5.3)."""


class InvalidFlag(MailstoreError):
    """A flag that cannot be stored (see ``nubo.mail.flags``)."""


class QuotaExceeded(MailstoreError):
    """The user's quota has no room for this message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(MailstoreError):
    """The metadata store or the blob store failed; the change did not happen."""

    temporary = True
