"""``nubo domain dns``: the records to publish, and what they make verifiable.

The command runs for real as a ``python -m nubo`` subprocess; what it prints
is then served by the loopback DNS server, and a message signed with the
key it made passes DKIM, SPF and DMARC there.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nubo.cli.mail import zone_lines
from nubo.config import load
from nubo.mail.authcheck import verify
from nubo.mail.dkim import dns_record, domain_key, generate_key, sign_async
from nubo.mail.dns import Resolver
from nubo.store.database import Database
from tests.mail.dnsserver import serve_dns

pytestmark = pytest.mark.slow

ZONE_LINE = re.compile(r"(\S+)\s+(\d+)\s+IN\s+(\S+)\s+(.*)")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def nubo(data: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NUBO_")}
    environ.update(NUBO_DATA=str(data), NUBO_HOSTNAME="mail.example.net", **env)
    return subprocess.run(
        [sys.executable, "-m", "nubo", *argv],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def parse_zone(text: str) -> list[tuple[str, str, str]]:
    """(name, type, data) of each record line; comments are skipped."""
    records = []
    for line in text.splitlines():
        if line.startswith(";"):
            continue
        found = ZONE_LINE.fullmatch(line)
        assert found, line
        name, ttl, rtype, data = found.groups()
        assert name.endswith(".") and int(ttl) > 0
        records.append((name.rstrip("."), rtype, data))
    return records


def txt_value(data: str) -> str:
    strings = STRING.findall(data)
    assert strings and all(len(s.encode()) <= 255 for s in strings)
    return "".join(strings)


def zone_to_records(zone: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The printed records as the loopback DNS server's dict."""
    records: dict[str, Any] = {}
    for name, rtype, data in zone:
        entry = records.setdefault(name, {})
        if rtype == "TXT":
            entry.setdefault("TXT", []).append(txt_value(data))
        elif rtype == "MX":
            preference, host = data.split()
            entry.setdefault("MX", []).append((int(preference), host.rstrip(".")))
    return records


def test_records_of_a_domain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert nubo(data, "domain", "add", "example.org").returncode == 0

    result = nubo(data, "domain", "dns", "Example.ORG")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    zone = parse_zone(result.stdout)
    by_type = {(name, rtype): data for name, rtype, data in zone}

    assert by_type["example.org", "MX"] == "10 mail.example.net."
    assert txt_value(by_type["example.org", "TXT"]) == "v=spf1 mx -all"
    dkim = txt_value(by_type["nubo._domainkey.example.org", "TXT"])
    assert dkim.startswith("v=DKIM1; k=rsa; p=")
    dmarc = txt_value(by_type["_dmarc.example.org", "TXT"])
    assert dmarc == "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.org"
    assert by_type["autoconfig.example.org", "CNAME"] == "mail.example.net."
    assert by_type["autodiscover.example.org", "CNAME"] == "mail.example.net."
    srv = {name: data for name, rtype, data in zone if rtype == "SRV"}
    assert srv["_submissions._tcp.example.org"] == "0 1 465 mail.example.net."
    assert srv["_submission._tcp.example.org"] == "10 1 587 mail.example.net."
    assert srv["_imaps._tcp.example.org"] == "0 1 993 mail.example.net."
    assert srv["_imap._tcp.example.org"] == "10 1 143 mail.example.net."
    assert srv["_pop3._tcp.example.org"] == "0 0 0 ."
    # The test ports are not the standard ones: a comment says so.
    assert "; SRV records give the standard ports" in result.stdout

    # The key is made once: a second run prints the same record.
    again = nubo(data, "domain", "dns", "example.org")
    assert dict(((n, t), d) for n, t, d in parse_zone(again.stdout)) == by_type


def test_unknown_and_invalid_domains(tmp_path: Path) -> None:
    data = tmp_path / "data"
    unknown = nubo(data, "domain", "dns", "nowhere.example")
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert unknown.stderr.splitlines()[-1] == "nubo: no such domain: nowhere.example"

    invalid = nubo(data, "domain", "dns", "exa_mple.org")
    assert invalid.returncode == 1
    assert invalid.stderr.splitlines()[-1].startswith("nubo: invalid domain")

    # A bad setting is a usage error of the whole command line: status 2.
    selector = nubo(data, "domain", "dns", "x.example", NUBO_DKIM_SELECTOR="a b")
    assert selector.returncode == 2
    assert "dkim_selector" in selector.stderr.splitlines()[-1]


def test_standard_ports_need_no_comment(tmp_path: Path) -> None:
    config = load(environ={}).replace(
        hostname="mail.example.net",
        submission_port=587,
        submissions_port=465,
        imap_port=143,
        imaps_port=993,
    )
    lines = zone_lines("example.org", config, generate_key(1, "nubo"))
    assert not any(line.startswith(";") for line in lines)

    relayed = zone_lines(
        "example.org",
        config.replace(relay_host="smarthost.example"),
        generate_key(1, "s"),
    )
    assert any("relay_host" in line for line in relayed if line.startswith(";"))


async def test_published_records_make_signed_mail_verifiable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = await asyncio.to_thread(nubo, data, "domain", "add", "example.org")
    assert result.returncode == 0
    printed = await asyncio.to_thread(nubo, data, "domain", "dns", "example.org")
    records = zone_to_records(parse_zone(printed.stdout))
    records["mail.example.net"] = {"A": ["192.0.2.25"]}

    config = load(environ={"NUBO_DATA": str(data)})
    db = Database(config.effective_database_url)
    try:
        key = await domain_key(db, "example.org", "nubo")
    finally:
        await db.close()
    assert key is not None
    assert txt_value(
        dict(((n, t), d) for n, t, d in parse_zone(printed.stdout))[
            "nubo._domainkey.example.org", "TXT"
        ]
    ) == dns_record(key)

    message = (
        b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\n"
        b"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\nMessage-ID: <x@example.org>\r\n"
        b"\r\nhello\r\n"
    )
    signed = await sign_async(message, key, "example.org") + message
    with serve_dns(records) as servers:
        resolver = Resolver.from_config(load(environ={}).replace(dns_servers=servers))
        results = await verify(
            signed,
            client_ip="192.0.2.25",
            helo="mail.example.net",
            mail_from="alice@example.org",
            resolver=resolver,
            authserv_id="mx.example.net",
        )
    assert (results.spf, results.dkim, results.dmarc) == ("pass", "pass", "pass")
