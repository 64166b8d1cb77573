"""``nubo domain dns``: the records to publish, and what they make verifiable.

The command runs for real as a ``python -m nubo`` subprocess; what it prints
is then served by the loopback DNS server, and a message signed with the
key it made passes DKIM, SPF and DMARC there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nubo.config import load
from nubo.mail.dkim import generate_key

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

    selector = nubo(data, "domain", "dns", "x.example", NUBO_DKIM_SELECTOR="a b")
    assert selector.returncode == 1
    assert "dkim_selector" in selector.stderr.splitlines()[-1]


def test_standard_ports_need_no_comment(tmp_path: Path) -> None:
    from nubo.cli.mail import zone_lines

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
