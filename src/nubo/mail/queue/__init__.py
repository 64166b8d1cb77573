"""The outbound queue: mail to send, kept in SQL until it is delivered.

``Outbound`` is the service: ``enqueue`` (durable on return), the workers
(``start``, ``stop``, ``run_once``) and the administration behind ``nubo
queue`` (``list``, ``retry``, ``delete``). Local recipients go into their
mailboxes through the mailstore; remote ones over SMTP to their MX hosts
(or the relay host), one connection per destination reused for several
messages. Temporary failures are retried with a doubling wait until
``queue_retry_for``; permanent ones and expiry send the sender a DSN
(RFC 3464), and a delay notice goes out once after
``queue_delay_notice_after``.

Invariants:

- A message in the queue has its bytes referenced in the blob store; the
  reference goes with the last recipient's outcome, in one transaction.
- Each recipient is attempted by one worker at a time (a lease in SQL), and
  its outcome is written right after its attempt, before the next message
  is sent: a recipient is sent twice only if a process dies between the
  remote "250" and that write (the window RFC 1047 describes).
- A report is queued in the transaction that records what it reports.

Modules: ``store`` (SQL), ``schedule`` (retry rules), ``remote`` (SMTP
client), ``local`` (mailbox delivery), ``dsn`` (reports), ``reply`` (the
outcome of an attempt), ``outbound`` (the service and its workers).

Known gaps: leases compare the clocks of the processes that share the
database, so those clocks must agree within a small part of the lease (20
minutes); RFC 3461 parameters (NOTIFY, RET, ENVID, ORCPT) are not taken;
DSNs are not DKIM-signed; see also the limitations in ``remote``.
"""

from nubo.mail.queue.errors import InvalidRecipient, NoSuchQueueMessage, QueueError
from nubo.mail.queue.model import MAX_QUEUE_ID, QueueEntry
from nubo.mail.queue.outbound import Outbound
from nubo.mail.queue.reply import Reply

__all__ = [
    "MAX_QUEUE_ID",
    "InvalidRecipient",
    "NoSuchQueueMessage",
    "Outbound",
    "QueueEntry",
    "QueueError",
    "Reply",
]
