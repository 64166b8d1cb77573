"""SMTP for nubo: the MX for hosted domains and submission for members.

Built on aiosmtpd (1.4.6 or later, the release that fixed SMTP smuggling
and the STARTTLS injection). The adapter holds no business rule: who a
recipient is, who may send as whom, quotas, storage and the outbound queue
are the services' (accounts, mailstore, queue, DKIM).

- ``listener``: ``SmtpListener``, one per port (smtp, submission,
  submissions), and ``smtp_listeners`` that makes the three.
- ``protocol``: ``SmtpProtocol``, aiosmtpd's session with nubo's bounds,
  timeouts, enhanced status codes and logging; ``Limits``.
- ``data``: the DATA reader's rules (end of data, smuggling, sizes).
- ``mx``: ``MxHandler``, delivery into local mailboxes (RFC 5321).
- ``submission``: ``SubmissionHandler``, AUTH, sender checks, rate limit,
  DKIM, the Sent copy and the queue (RFC 6409).
- ``handler``: what both handlers share, and ``Services``.
- ``headers``, ``replies``: header facts, replies (the trace fields,
  Return-Path and Received, are ``nubo.mail.trace``, shared with the queue).

What is implemented and what is partial: ``docs/smtp.md``.
"""

from nubo.mail.smtp.handler import Services
from nubo.mail.smtp.listener import SmtpListener, smtp_listeners
from nubo.mail.smtp.mx import MxHandler
from nubo.mail.smtp.protocol import Limits
from nubo.mail.smtp.submission import SubmissionHandler

__all__ = [
    "Limits",
    "MxHandler",
    "Services",
    "SmtpListener",
    "SubmissionHandler",
    "smtp_listeners",
]
