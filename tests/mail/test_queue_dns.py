"""Where remote mail goes, through real DNS answers from a loopback server:
MX hosts in order of preference, the implicit MX, and the answers that
bounce (no such domain, null MX) or wait (a failing DNS server).

Storage does not matter here: the embedded pair only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nubo.accounts import ManualClock
from nubo.mail.queue import Outbound
from tests.mail.dnsserver import SERVFAIL, serve_dns
from tests.mail.mailstore_rig import MailRig
from tests.mail.queue_rig import inbox, make_outbound, message, report_parts
from tests.mail.scripted_mx import ScriptedMX, scripted_mx

pytestmark = pytest.mark.parametrize("mail_pair", ["embedded"], indirect=True)

RECORDS = {
    "remote.test": {"MX": [(10, "dead.remote.test"), (20, "mx.remote.test")]},
    "dead.remote.test": {"A": ["127.0.0.2"]},  # nothing listens there
    "mx.remote.test": {"A": ["127.0.0.1"]},
    "bare.test": {"A": ["127.0.0.1"]},  # no MX: the implicit MX
    "nomail.test": {"MX": [(0, ".")]},  # RFC 7505 null MX
    "broken.test": SERVFAIL,
}


@pytest.fixture
def mx() -> Iterator[ScriptedMX]:
    with scripted_mx() as server:
        yield server


def outbound_via_dns(
    mail: MailRig, mx: ScriptedMX, dns: str, clock: ManualClock | None = None
) -> Outbound:
    return make_outbound(
        mail, None, clock, dns_servers=dns, outbound_port=mx.port, dns_timeout=2.0
    )


async def test_mx_hosts_are_tried_in_order_and_the_implicit_mx_works(
    mail: MailRig, mx: ScriptedMX
) -> None:
    with serve_dns(RECORDS) as dns:
        outbound = outbound_via_dns(mail, mx, dns)
        await outbound.enqueue("ann@example.org", ["bob@remote.test"], message(1))
        await outbound.enqueue("ann@example.org", ["carol@bare.test"], message(2))
        assert await outbound.run_once() == 2
    assert sorted(d.rcpt_tos for d in mx.delivered) == [
        ("bob@remote.test",),
        ("carol@bare.test",),
    ]
    assert await outbound.list() == []


@pytest.mark.parametrize(
    ("recipient", "status"),
    [("bob@unknown.test", "5.1.2"), ("bob@nomail.test", "5.1.10")],
)
async def test_a_domain_that_takes_no_mail_bounces(
    mail: MailRig, mx: ScriptedMX, recipient: str, status: str
) -> None:
    ann = await mail.user("ann")
    with serve_dns(RECORDS) as dns:
        outbound = outbound_via_dns(mail, mx, dns)
        await outbound.enqueue("ann@example.org", [recipient], message(1))
        await outbound.run_once()
    [report] = await inbox(mail, ann)
    _parsed, recipients, header = report_parts(report)
    assert "Subject: note 1" in header  # the sender can tell which message
    assert recipients[0]["Status"] == status
    assert recipients[0]["Final-Recipient"] == f"rfc822; {recipient}"
    assert mx.delivered == []


async def test_a_failing_dns_server_defers(mail: MailRig, mx: ScriptedMX) -> None:
    with serve_dns(RECORDS) as dns:
        outbound = outbound_via_dns(mail, mx, dns, ManualClock())
        await outbound.enqueue("ann@example.org", ["bob@broken.test"], message(1))
        await outbound.run_once()
    [entry] = await outbound.list()
    assert entry.attempts == 1
    assert entry.last_reply is not None and entry.last_reply.startswith("4.4.3")
