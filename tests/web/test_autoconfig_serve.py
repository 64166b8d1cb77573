"""Autoconfiguration from a real ``nubo serve``: the ports it names are the
ones its listeners print, even when the system chose them (port 0)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.serve import NuboProcess

pytestmark = pytest.mark.slow

# The ports each (server kind, socketType) pair is served on.
LISTENER = {
    ("incomingServer", "SSL"): "imaps",
    ("incomingServer", "STARTTLS"): "imap",
    ("outgoingServer", "SSL"): "submissions",
    ("outgoingServer", "STARTTLS"): "submission",
}


def test_thunderbird_autoconfig_names_the_listening_ports(
    nubo_server: NuboProcess,
) -> None:
    # The first domain of an empty store is the hostname, "localhost".
    answer = httpx.get(
        nubo_server.url("http") + "/.well-known/autoconfig/mail/config-v1.1.xml",
        params={"emailaddress": "someone@localhost"},
        timeout=10,
    )

    assert answer.status_code == 200
    root = ET.fromstring(answer.content)
    named = {
        LISTENER[tag, server.findtext("socketType", "")]: int(
            server.findtext("port", "0")
        )
        for tag in ("incomingServer", "outgoingServer")
        for server in root.iter(tag)
    }
    assert set(named) == set(LISTENER.values())
    for name in ("submission", "submissions"):
        assert named[name] == nubo_server.addresses[name][1]
    # The IMAP lines are waited for once tests.serve lists IMAP listeners.
    for name in ("imap", "imaps"):
        if name in nubo_server.addresses:
            assert named[name] == nubo_server.addresses[name][1]
    for server in root.iter("incomingServer"):
        assert server.findtext("hostname") == "localhost"


def test_an_unhosted_domain_is_404_over_the_socket(nubo_server: NuboProcess) -> None:
    answer = httpx.get(
        nubo_server.url("http") + "/mail/config-v1.1.xml",
        headers={"host": "autoconfig.elsewhere.test"},
        timeout=10,
    )

    assert answer.status_code == 404
