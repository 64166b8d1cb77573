"""The outbound queue's service: enqueue, the workers, and administration.

``Outbound.enqueue`` makes a message durable in the queue and wakes the
workers (events topic "queue"). ``start`` runs ``queue_concurrency``
workers in this process; each leases the due recipients of one destination
domain (``QueueStore.lease``), delivers them message by message over one
connection (``remote``) or into local mailboxes (``local``), and writes
each message's outcome right after its attempt, before the next message
goes out: a recipient is never sent twice in the normal path. ``stop``
stops leasing, lets each worker finish the message in hand within the
grace, then gives back the leases of what was not attempted.

Leases and the attempt bound: a lease lasts ``lease_seconds``; a worker
cuts its delivery at nine tenths of that (``asyncio.timeout``), counting
the message in hand as a failed attempt and giving back the rest, so no
delivery outlives its lease and another process never takes over a row
still in flight. Outcomes are written under ``asyncio.shield``: a cut or a
stop never loses the record of a "250" already received.

Retries and reports follow ``schedule``; bounces and delay notices are
DSNs (``dsn``) queued with an empty sender in the transaction that records
the outcome, and delivered like any message: into the sender's Inbox when
the sender is local. A bounce is never bounced: a failed report is dropped
with a log line.

Logs: one line per recipient attempt with the queue id, the recipient's row
id and domain, the result and the reply code; never an address (at info)
or any content.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy.exc import SQLAlchemyError

from nubo.accounts.clock import Clock, SystemClock
from nubo.accounts.service import Accounts
from nubo.config import Config
from nubo.mail.dns import DnsError, NullMx, Resolver
from nubo.mail.mailstore import Mailstore
from nubo.mail.queue.dsn import DsnEntry, build_dsn
from nubo.mail.queue.errors import InvalidRecipient
from nubo.mail.queue.local import MailDelivery, deliver_local
from nubo.mail.queue.model import Leased, QueueEntry
from nubo.mail.queue.remote import ClientSettings, Destination, opportunistic_tls
from nubo.mail.queue.reply import Reply, no_answer
from nubo.mail.queue.schedule import Decision, Policy, Report, decide
from nubo.mail.queue.store import PendingDsn, QueueStore, split_recipient
from nubo.runtime import Runtime
from nubo.store.blobs import Blobs, BlobStoreError
from nubo.store.database import Database, describe_error
from nubo.store.events import EventBus, EventError, Subscription

log = logging.getLogger(__name__)

TOPIC = "queue"

# How long a lease lasts; a delivery is cut at LEASE_USE of it. Long enough
# for one message to the slowest host RFC 5321 §4.5.3.2 allows (5 minutes
# per command, 10 for the end of DATA).
LEASE_SECONDS = 1200.0
LEASE_USE = 0.9

# Recipients leased at once, all of one destination domain.
LEASE_BATCH = 100

# Store and blob failures a worker survives: it logs, waits, tries again.
_STORE_FAILURES = (SQLAlchemyError, BlobStoreError, OSError)


class Outbound:
    """The outbound queue of this process: its workers and its records."""

    def __init__(
        self,
        config: Config,
        db: Database,
        blobs: Blobs,
        events: EventBus,
        mailstore: MailDelivery,
        accounts: Accounts,
        resolver: Resolver,
        *,
        clock: Clock | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.config = config
        self.db = db
        self.blobs = blobs
        self.events = events
        self.mailstore = mailstore
        self.accounts = accounts
        self.resolver = resolver
        self.clock: Clock = clock or SystemClock()
        self.lease_seconds = lease_seconds
        self.store = QueueStore(db, blobs)
        self.policy = Policy.from_config(config)
        # Leases name their owner: a random id per Outbound, so a restarted
        # process never mistakes a dead one's leases for its own.
        self.owner = secrets.token_hex(8)
        self.client = ClientSettings(
            local_hostname=config.hostname,
            auth=(
                (config.relay_username, config.relay_password)
                if config.relay_host and config.relay_username
                else None
            ),
        )
        self._tls = opportunistic_tls()
        self._stopping = False
        self._wake = asyncio.Event()
        self._generation = 0  # counts wake-ups, so none is missed
        self._workers: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    def for_runtime(cls, rt: Runtime, *, clock: Clock | None = None) -> Outbound:
        """An Outbound over an opened store, with services of its own (for
        commands and tools; the server shares its services instead)."""
        return cls(
            rt.config,
            rt.db,
            rt.blobs,
            rt.events,
            Mailstore(rt.db, rt.blobs, rt.events),
            Accounts(rt.db, rt.config),
            Resolver.from_config(rt.config),
            clock=clock,
        )

    # -- enqueue ----------------------------------------------------------

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        user_id: int | None = None,
    ) -> int:
        """Queue ``raw`` for ``recipients``; durable when it returns.

        ``sender`` is the envelope sender, "" for a report. Raises
        InvalidRecipient for an address without a usable domain.
        """
        message_id = await self.store.enqueue(
            sender, recipients, raw, user_id=user_id, now=self.clock.now()
        )
        log.info(
            "queued queue_id=%d recipients=%d size=%d",
            message_id,
            len(recipients),
            len(raw),
        )
        await self._publish()
        return message_id

    async def _publish(self) -> None:
        try:
            await self.events.publish(TOPIC, {})
        except (EventError, OSError, asyncpg.PostgresError) as exc:
            # The rows are committed; the next poll finds them.
            log.warning("queue wake-up not sent error=%s", type(exc).__name__)

    # -- administration ---------------------------------------------------

    async def list(self) -> builtins.list[QueueEntry]:
        """Messages still queued, oldest first."""
        return await self.store.entries()

    async def retry(self, message_id: int | None = None) -> int:
        """Make one message (or all) due now; how many messages."""
        count = await self.store.retry(message_id, self.clock.now())
        log.info("queue retry requested messages=%d", count)
        await self._publish()
        return count

    async def delete(self, message_id: int) -> int:
        """Drop a message without a report; its recipients still queued."""
        pending = await self.store.delete(message_id)
        log.info("queue message deleted queue_id=%d pending=%d", message_id, pending)
        return pending

    # -- the workers ------------------------------------------------------

    async def start(self) -> None:
        """Start the workers of this process."""
        if self._workers:
            return
        if self.db.is_sqlite:
            # On SQLite one process owns the queue: leases found at its start
            # are a previous run's, which was killed.
            released = await self.store.release_all()
            if released:
                log.info("leases of a previous run released count=%d", released)
        self._stopping = False
        self._wake.clear()
        subscription = self.events.subscribe(TOPIC)
        self._listener = asyncio.create_task(
            self._listen(subscription), name="queue-wake"
        )
        count = self.config.queue_concurrency
        self._workers = [
            asyncio.create_task(self._work(), name=f"queue-worker-{n}")
            for n in range(count)
        ]
        log.info("outbound queue started workers=%d", count)

    async def stop(self, grace: float) -> None:
        """Stop leasing, let messages in hand finish within ``grace``
        seconds, cut the rest, and give back every lease of this process."""
        if not self._workers:
            return
        self._stopping = True
        self._wake.set()
        _done, pending = await asyncio.wait(self._workers, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        self._workers, self._listener = [], None

        try:
            released = await self.store.release(self.owner)
        except _STORE_FAILURES as exc:
            # They expire on their own after the lease time.
            log.warning("queue leases not released error=%s", describe_error(exc))
            return
        log.info("outbound queue stopped cut=%d released=%d", len(pending), released)

    async def _listen(self, subscription: Subscription) -> None:
        with subscription:
            async for _event in subscription:
                self._generation += 1
                self._wake.set()
                self._wake.clear()

    async def _work(self) -> None:
        while not self._stopping:
            generation = self._generation
            try:
                rows = await self._lease()
                if rows:
                    await self._deliver(rows)
                    continue
            except _STORE_FAILURES as exc:
                log.warning("queue pass failed error=%s", describe_error(exc))
            except Exception:
                # A fault of nubo's own: the worker must outlive it, so that
                # the rest of the queue still goes out; the log says where.
                log.exception("queue worker fault")
            else:
                if generation != self._generation:
                    continue  # woken while it looked: look again
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), self.config.queue_poll_interval
                )

    async def run_once(self) -> int:
        """Deliver everything due now, destination after destination; how
        many recipients were attempted."""
        attempted = 0
        while rows := await self._lease():
            attempted += await self._deliver(rows)
        return attempted

    # -- one destination --------------------------------------------------

    async def _lease(self) -> builtins.list[Leased]:
        now = self.clock.now()
        until = now + timedelta(seconds=self.lease_seconds)
        return await self.store.lease(self.owner, now, until, LEASE_BATCH)

    async def _deliver(self, rows: Sequence[Leased]) -> int:
        """Attempt the leased rows of one domain; how many were attempted.
        Rows not attempted (a stop, the lease bound) are given back."""
        progress = _Progress()
        try:
            async with asyncio.timeout(self.lease_seconds * LEASE_USE):
                await self._deliver_messages(rows, progress)
        except TimeoutError:
            await progress.settle()
            if progress.current:
                log.warning(
                    "delivery cut at the lease bound queue_id=%d domain=%s",
                    progress.current[0].message_id,
                    progress.current[0].domain,
                )
                cut = no_answer("4.4.2", "delivery took too long; cut")
                replies = dict.fromkeys((row.id for row in progress.current), cut)
                await self._record(progress.current, replies, progress.raw, {})
                progress.finish()
        finally:
            await progress.settle()
            rest = [row.id for row in rows if row.id not in progress.done]
            if rest:
                await self.store.release(self.owner, rest)
        return progress.attempted

    async def _deliver_messages(
        self, rows: Sequence[Leased], progress: _Progress
    ) -> None:
        domain = rows[0].domain
        local = await self.accounts.find_domain(domain) is not None
        destination: Destination | None = None
        failure: Reply | None = None
        if not local:
            try:
                hosts = await self.resolver.outbound_hosts(domain)
                destination = Destination(hosts, self.resolver, self.client, self._tls)
            except DnsError as exc:
                failure = no_answer(_dns_status(exc), str(exc))

        try:
            for message_rows in _by_message(rows):
                if self._stopping:
                    break
                progress.begin(message_rows)
                raw, unreadable = await self._read(message_rows[0])
                progress.raw = raw
                replies, split = await self._attempt(
                    message_rows, raw, local, destination, failure or unreadable
                )
                progress.recording = asyncio.ensure_future(
                    self._record(message_rows, replies, raw, split)
                )
                await progress.settle()
        except BaseException:
            if destination is not None:
                destination.abort()
            raise
        if destination is not None:
            await destination.close()

    async def _read(self, row: Leased) -> tuple[bytes, Reply | None]:
        """The message's bytes, or why they cannot be had now."""
        try:
            return await self.blobs.read_bytes(row.blob_id), None
        except BlobStoreError as exc:
            log.error(
                "queued message unreadable queue_id=%d error=%s", row.message_id, exc
            )
            return b"", Reply(451, "4.3.0", "message bytes unreadable; will retry")

    async def _attempt(
        self,
        rows: Sequence[Leased],
        raw: bytes,
        local: bool,
        destination: Destination | None,
        failure: Reply | None,
    ) -> tuple[dict[int, Reply], dict[int, builtins.list[str]]]:
        """Send one message to its rows; (a reply per row id, addresses to
        queue again on their own)."""
        if failure is not None:
            return dict.fromkeys((row.id for row in rows), failure), {}
        if local:
            outcome = await deliver_local(
                self.mailstore,
                self.accounts,
                rows,
                raw,
                hostname=self.config.hostname,
                now=self.clock.now(),
            )
            return outcome.replies, outcome.split

        assert destination is not None
        by_address = await destination.send(
            rows[0].sender, [row.recipient for row in rows], raw
        )
        return {row.id: by_address[row.recipient] for row in rows}, {}

    # -- outcomes ---------------------------------------------------------

    async def _record(
        self,
        rows: Sequence[Leased],
        replies: dict[int, Reply],
        raw: bytes,
        split: dict[int, builtins.list[str]],
    ) -> None:
        """Decide and write the outcome of one message's attempt, with its
        report; never raises for a store failure (the leases then expire)."""
        now = self.clock.now()
        decisions = [decide(self.policy, row, replies[row.id], now) for row in rows]
        try:
            reports = await self._reports(decisions, raw, now)
            applied = await self.store.apply(
                self.owner, decisions, reports, now, split=split
            )
        except (*_STORE_FAILURES, InvalidRecipient) as exc:
            log.error(
                "outcome not recorded queue_id=%d error=%s",
                rows[0].message_id,
                describe_error(exc),
            )
            return
        for decision in decisions:
            _log_attempt(decision, decision.row.id in applied)

    async def _reports(
        self, decisions: Sequence[Decision], raw: bytes, now: datetime
    ) -> builtins.list[PendingDsn]:
        """The report this attempt owes the sender, its bytes stored."""
        entries = [d for d in decisions if d.report is not None]
        if not entries:
            return []
        row = entries[0].row
        if not row.sender:
            log.info(
                "report about a report dropped queue_id=%d recipients=%d",
                row.message_id,
                len(entries),
            )
            return []
        try:
            split_recipient(row.sender)
        except InvalidRecipient:
            log.warning("report not sent: bad sender queue_id=%d", row.message_id)
            return []

        report = build_dsn(
            hostname=self.config.hostname,
            sender=row.sender,
            arrival=row.created_at,
            entries=[_entry(d, self.policy, now) for d in entries],
            original=raw,
            now=now,
        )
        blob_id, size = await self.blobs.put_bytes(report)
        about = tuple(d.row.id for d in entries)
        return [PendingDsn(row.sender, blob_id, size, about)]


@dataclass
class _Progress:
    """Where a worker is in its leased rows."""

    current: Sequence[Leased] = ()  # the message being attempted
    raw: bytes = b""  # its bytes
    recording: asyncio.Future[None] | None = None  # its outcome being written
    done: set[int] = field(default_factory=set)  # row ids attempted
    attempted: int = 0

    def begin(self, rows: Sequence[Leased]) -> None:
        self.current = rows

    def finish(self) -> None:
        self.done.update(row.id for row in self.current)
        self.attempted += len(self.current)
        self.current = ()
        self.raw = b""

    async def settle(self) -> None:
        """Wait for the outcome being written, even when cancelled: a
        cancellation reaches the caller, never the write."""
        task = self.recording
        if task is None:
            return
        await asyncio.shield(task)
        self.recording = None
        self.finish()


def _by_message(rows: Sequence[Leased]) -> builtins.list[builtins.list[Leased]]:
    groups: dict[int, builtins.list[Leased]] = {}
    for row in rows:
        groups.setdefault(row.message_id, []).append(row)
    return builtins.list(groups.values())


def _dns_status(exc: DnsError) -> str:
    """RFC 3463 §3.5 X.4.3 (directory server failure) for a lookup to retry,
    RFC 7505 §4.2 X.1.10 for a null MX, X.1.2 (bad destination system)
    for a domain that does not take mail."""
    if exc.temporary:
        return "4.4.3"
    return "5.1.10" if isinstance(exc, NullMx) else "5.1.2"


def _entry(decision: Decision, policy: Policy, now: datetime) -> DsnEntry:
    assert decision.report is not None
    retry_until = None
    if decision.report is Report.DELAYED:
        retry_until = policy.expires(decision.row.created_at)
    return DsnEntry(
        recipient=decision.row.recipient,
        report=decision.report,
        reply=decision.reply,
        last_attempt=now,
        retry_until=retry_until,
        expired=decision.expired,
    )


def _log_attempt(decision: Decision, applied: bool) -> None:
    row, reply = decision.row, decision.reply
    result = {"sent": "sent", "queued": "deferred", "bounced": "bounced"}[
        decision.state
    ]
    if not applied:
        result += "-unrecorded"  # the row was deleted or taken over meanwhile
    log.info(
        "delivery queue_id=%d rcpt_id=%d domain=%s result=%s code=%s attempt=%d%s",
        row.message_id,
        row.id,
        row.domain,
        result,
        reply.code or reply.status,
        row.attempts + 1,
        " report=" + decision.report.value if decision.report else "",
    )
