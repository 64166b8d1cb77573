"""Outlook's POX autodiscover: the answer, and what a hostile body gets."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import pytest

from nubo.web.autodiscover import MAX_REQUEST_BYTES, PATHS
from tests.web.conftest import ENDPOINTS, MakeClient

REQUEST_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
)
RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
MOBILESYNC_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)
NS = {"r": RESPONSE_NS, "a": OUTLOOK_NS}


def request_body(address: str, schema: str = OUTLOOK_NS) -> bytes:
    """A request as Outlook and Thunderbird send it."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<Autodiscover xmlns="{REQUEST_NS}">\n'
        "  <Request>\n"
        f"    <EMailAddress>{address}</EMailAddress>\n"
        f"    <AcceptableResponseSchema>{schema}</AcceptableResponseSchema>\n"
        "  </Request>\n"
        "</Autodiscover>\n"
    ).encode()


def protocols(root: ET.Element) -> list[dict[str, str]]:
    found = root.findall("a:Response/a:Account/a:Protocol", NS)
    return [
        {child.tag.rpartition("}")[2]: child.text or "" for child in p} for p in found
    ]


@pytest.mark.parametrize("path", PATHS)
async def test_the_answer_names_imap_and_smtp_with_their_tls(
    make_client: MakeClient, path: str
) -> None:
    client = make_client("https://autodiscover.example.org")
    answer = await client.post(
        path,
        content=request_body("Alice@Example.ORG"),
        headers={"content-type": "text/xml; charset=utf-8"},
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(answer.content)
    assert root.tag == f"{{{RESPONSE_NS}}}Autodiscover"
    assert root.findtext("a:Response/a:Account/a:AccountType", None, NS) == "email"
    assert root.findtext("a:Response/a:Account/a:Action", None, NS) == "settings"

    seen = [
        (p["Type"], p["Server"], p["Port"], p["SSL"], p["Encryption"])
        for p in protocols(root)
    ]
    host = ENDPOINTS.hostname
    assert seen == [
        ("IMAP", host, "1993", "on", "SSL"),
        ("SMTP", host, "1465", "on", "SSL"),
        ("IMAP", host, "1143", "on", "TLS"),
        ("SMTP", host, "1587", "on", "TLS"),
    ]
    for protocol in protocols(root):
        assert protocol["LoginName"] == "alice@example.org"
        assert protocol["SPA"] == "off"
        assert protocol["AuthRequired"] == "on"


async def test_an_unknown_domain_is_404(make_client: MakeClient) -> None:
    answer = await make_client().post(
        PATHS[0], content=request_body("eve@elsewhere.test")
    )

    assert answer.status_code == 404
    assert answer.text == "this server hosts no mail for that domain"


async def test_xml_that_does_not_parse_is_400_with_the_reason(
    make_client: MakeClient,
) -> None:
    answer = await make_client().post(PATHS[0], content=b"<Autodiscover><Request>")

    assert answer.status_code == 400
    assert answer.text.startswith("the request is not well-formed XML: ")
    assert "Traceback" not in answer.text


async def test_entities_are_refused(make_client: MakeClient) -> None:
    laughs = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE a [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n'
        b"<Autodiscover><Request><EMailAddress>&lol2;</EMailAddress>"
        b"</Request></Autodiscover>"
    )
    answer = await make_client().post(PATHS[0], content=laughs)

    assert answer.status_code == 400
    assert answer.text == "the request declares a DTD or entities, which are refused"


async def test_a_request_without_an_address_is_400(make_client: MakeClient) -> None:
    body = f'<Autodiscover xmlns="{REQUEST_NS}"><Request/></Autodiscover>'
    answer = await make_client().post(PATHS[0], content=body.encode())

    assert answer.status_code == 400
    assert answer.text == "the request names no EMailAddress"


async def test_an_address_that_does_not_parse_is_400(make_client: MakeClient) -> None:
    answer = await make_client().post(PATHS[0], content=request_body("not an address"))

    assert answer.status_code == 400
    assert answer.text == "EMailAddress is not an email address"


async def test_an_oversize_body_is_413(make_client: MakeClient) -> None:
    padding = b" " * MAX_REQUEST_BYTES
    answer = await make_client().post(
        PATHS[0], content=request_body("alice@example.org") + padding
    )

    assert answer.status_code == 413
    assert answer.text == f"the request body is limited to {MAX_REQUEST_BYTES} bytes"


async def test_an_oversize_chunked_body_is_413(make_client: MakeClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_REQUEST_BYTES // 1024 + 2):
            yield b" " * 1024

    answer = await make_client().post(PATHS[0], content=chunks())

    assert answer.status_code == 413


async def test_another_response_schema_gets_error_601(make_client: MakeClient) -> None:
    body = request_body("alice@example.org", schema=MOBILESYNC_NS)
    answer = await make_client().post(PATHS[0], content=body)

    assert answer.status_code == 200
    root = ET.fromstring(answer.content)
    assert root.findtext("r:Response/r:Error/r:ErrorCode", None, NS) == "601"


async def test_get_is_405(make_client: MakeClient) -> None:
    answer = await make_client().get(PATHS[0])

    assert answer.status_code == 405
