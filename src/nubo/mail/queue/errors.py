"""Errors of the outbound queue.

::

    QueueError
    ├── InvalidRecipient     an address that cannot be queued
    └── NoSuchQueueMessage   retry or delete of an id not in the queue
"""

from __future__ import annotations


class QueueError(Exception):
    """The queue refused an operation; the message says why, in one line."""


class InvalidRecipient(QueueError):
    """A recipient address without a usable domain."""


class NoSuchQueueMessage(QueueError):
    """No queued message has this id."""

    def __init__(self, message_id: int) -> None:
        super().__init__(f"no such queued message: {message_id}")
        self.message_id = message_id
