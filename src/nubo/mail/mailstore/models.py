"""What the mailstore returns: plain frozen values, detached from SQL.

The names are IMAP's (RFC 3501 §2.3.1, RFC 7162 §3.1): UIDVALIDITY,
UIDNEXT, HIGHESTMODSEQ, MODSEQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from nubo.mail.mailstore.errors import MailstoreError
from nubo.mail.message import Envelope, MessageInfo


@dataclass(frozen=True)
class Mailbox:
    """A mailbox as it was when read; its counters move on after."""

    id: int
    user_id: int
    name: str
    special_use: str | None  # RFC 6154 attribute without "\\": "Sent"
    subscribed: bool
    uidvalidity: int
    uidnext: int
    highestmodseq: int


@dataclass(frozen=True)
class Stored:
    """Where a delivered or appended message landed (APPENDUID, RFC 4315)."""

    user_id: int
    mailbox_id: int
    uidvalidity: int
    uid: int
    modseq: int
    size: int
    blob_id: str


@dataclass(frozen=True)
class MailboxStatus:
    """STATUS items (RFC 3501 §6.3.10, RFC 7162 §3.1.2, RFC 8438 SIZE)."""

    messages: int
    unseen: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int
    size: int  # bytes of all messages
    deleted: int  # messages flagged \Deleted


@dataclass(frozen=True)
class MessageRow:
    """One message of a mailbox: what FETCH needs without the bytes.

    ``flags`` holds system flags ("\\Seen") and keywords together.
    ``info`` parses ``info_json`` on first use; it is empty (and ``info``
    raises) when the row was read with ``with_info=False``.
    """

    uid: int
    modseq: int
    flags: frozenset[str]
    internal_date: datetime
    size: int
    blob_id: str
    info_json: str
    sent_date: datetime | None

    @cached_property
    def info(self) -> MessageInfo:
        """Envelope, structure and offsets (``nubo.mail.message``)."""
        if not self.info_json:
            raise MailstoreError("message read without its structure")
        return MessageInfo.from_json(self.info_json)

    @cached_property
    def envelope(self) -> Envelope:
        """The envelope, read without the rest of ``info``."""
        if "info" in self.__dict__:
            return self.info.envelope
        if not self.info_json:
            raise MailstoreError("message read without its structure")
        return MessageInfo.envelope_from_json(self.info_json)

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags

    @property
    def deleted(self) -> bool:
        return "\\Deleted" in self.flags
