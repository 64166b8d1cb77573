"""Thunderbird's autoconfig file (clientConfig 1.1), at both of its paths."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nubo.accounts import Accounts
from tests.web.conftest import ENDPOINTS, MakeClient

WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"
HOST_FORM = "/mail/config-v1.1.xml"


def servers(root: ET.Element, tag: str) -> list[tuple[str, str, str, str]]:
    """(type, hostname, port, socketType) of each server, in order."""
    return [
        (
            server.attrib["type"],
            server.findtext("hostname", ""),
            server.findtext("port", ""),
            server.findtext("socketType", ""),
        )
        for server in root.iter(tag)
    ]


async def test_the_well_known_path_names_the_imap_and_submission_ports(
    make_client: MakeClient,
) -> None:
    client = make_client("https://example.org")
    answer = await client.get(WELL_KNOWN, params={"emailaddress": "alice@example.org"})

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(answer.content)
    assert root.tag == "clientConfig"
    assert root.attrib["version"] == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None
    assert provider.attrib["id"] == "example.org"
    assert provider.findtext("domain") == "example.org"

    host = ENDPOINTS.hostname
    assert servers(root, "incomingServer") == [
        ("imap", host, "1993", "SSL"),
        ("imap", host, "1143", "STARTTLS"),
    ]
    assert servers(root, "outgoingServer") == [
        ("smtp", host, "1465", "SSL"),
        ("smtp", host, "1587", "STARTTLS"),
    ]
    for server in [*root.iter("incomingServer"), *root.iter("outgoingServer")]:
        assert server.findtext("username") == "%EMAILADDRESS%"
        assert server.findtext("authentication") == "password-cleartext"


async def test_the_autoconfig_host_form_takes_the_domain_from_the_host(
    make_client: MakeClient,
) -> None:
    client = make_client("https://AUTOCONFIG.Example.ORG")
    answer = await client.get(HOST_FORM)

    assert answer.status_code == 200
    root = ET.fromstring(answer.content)
    assert root.find("emailProvider[@id='example.org']") is not None
    assert servers(root, "incomingServer")[0] == (
        "imap",
        ENDPOINTS.hostname,
        "1993",
        "SSL",
    )


async def test_the_address_decides_over_the_host(make_client: MakeClient) -> None:
    client = make_client("https://autoconfig.elsewhere.test")
    answer = await client.get(HOST_FORM, params={"emailaddress": "Bob@EXAMPLE.org"})

    assert answer.status_code == 200
    assert b'<emailProvider id="example.org">' in answer.content


async def test_an_unknown_domain_is_404(make_client: MakeClient) -> None:
    by_address = await make_client().get(
        WELL_KNOWN, params={"emailaddress": "eve@elsewhere.test"}
    )
    by_host = await make_client("https://autoconfig.elsewhere.test").get(HOST_FORM)

    assert by_address.status_code == 404
    assert by_address.text == "this server hosts no mail for that domain"
    assert by_host.status_code == 404


async def test_an_emailaddress_without_an_at_sign_is_400(
    make_client: MakeClient,
) -> None:
    answer = await make_client().get(WELL_KNOWN, params={"emailaddress": "alice"})

    assert answer.status_code == 400
    assert answer.text == "emailaddress is not an email address"


async def test_an_internationalized_domain_is_named_in_a_labels(
    make_client: MakeClient, accounts: Accounts
) -> None:
    await accounts.add_domain("bücher.example")

    answer = await make_client().get(
        WELL_KNOWN, params={"emailaddress": "ann@bücher.example"}
    )

    assert answer.status_code == 200
    root = ET.fromstring(answer.content)
    assert root.findtext("emailProvider/domain") == "xn--bcher-kva.example"
