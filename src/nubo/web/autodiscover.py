"""Outlook's autodiscover, the "plain old XML" (POX) form, for IMAP accounts.

Outlook (and Thunderbird, as its second try) POSTs to
``https://autodiscover.<domain>/autodiscover/autodiscover.xml``, or to the
domain itself, a request naming ``EMailAddress`` and the response schema it
accepts (MS-OXDSCLI, the Autodiscover request). The path is served in the
spellings clients use (``/autodiscover/autodiscover.xml``,
``/Autodiscover/Autodiscover.xml``).

The answer (MS-OXDSCLI §2.2.4.1.1.2, response schema "outlook" 2006a) names,
for a domain nubo hosts, an IMAP and an SMTP Protocol with implicit TLS, then
one of each with STARTTLS, on ``hostname``, with the address as LoginName.
SSL is always on; Encryption says which TLS: "SSL" is implicit TLS and "TLS"
is STARTTLS (MS-OXDSCLI §2.2.4.1.1.2.6, the Protocol's children). A domain
nubo does not host is 404. A request for another response schema (ActiveSync
asks for "mobilesync") gets the protocol's error answer, code 601.

The request is untrusted XML: it is read up to ``MAX_REQUEST_BYTES`` (more is
413) and parsed by defusedxml, which refuses entities and DTDs; anything that
does not parse is 400 with the reason.

Limitation: clients that read only the SSL element (Thunderbird does) guess
STARTTLS or implicit TLS from the port number, taking a port other than
143/587 for implicit TLS; they pick the first Protocol of each type, which
is the implicit TLS one, so they guess right, but their STARTTLS
alternatives on non-standard ports are wrong. Only standard ports lift it.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nubo.accounts.addresses import parse_address
from nubo.accounts.errors import InvalidInput
from nubo.accounts.service import Accounts
from nubo.web.autoconfig import XML_TYPE, hosted_domain
from nubo.web.endpoints import ClientEndpoints

log = logging.getLogger(__name__)

PATHS = (
    "/autodiscover/autodiscover.xml",
    "/Autodiscover/Autodiscover.xml",
    "/AutoDiscover/AutoDiscover.xml",
)
# A real request is a few hundred bytes.
MAX_REQUEST_BYTES = 64 * 1024

RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
# MS-OXDSCLI §2.2.4.1.1.3, ErrorCode: no configuration of the requested type.
NO_PROVIDER = "601"


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the request body is limited to {limit} bytes")

    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the request body is limited to {limit} bytes")
    return bytes(body)


def parse_request(body: bytes) -> tuple[str, str | None]:
    """EMailAddress and AcceptableResponseSchema of an Autodiscover request.

    Elements are found by local name: clients differ in how they write the
    request namespace.
    """
    try:
        root = fromstring(body)
    except ET.ParseError as exc:
        raise HTTPException(400, f"the request is not well-formed XML: {exc}") from None
    except DefusedXmlException:
        raise HTTPException(
            400, "the request declares a DTD or entities, which are refused"
        ) from None

    found: dict[str, str] = {}
    for element in root.iter():
        name = element.tag.rpartition("}")[2]
        if name in ("EMailAddress", "AcceptableResponseSchema"):
            found.setdefault(name, (element.text or "").strip())
    if not found.get("EMailAddress"):
        raise HTTPException(400, "the request names no EMailAddress")
    return found["EMailAddress"], found.get("AcceptableResponseSchema")


def settings_response(login: str, endpoints: ClientEndpoints) -> bytes:
    """The 2006a "settings" answer, MS-OXDSCLI §2.2.4.1.1.2."""
    root = ET.Element("Autodiscover", xmlns=RESPONSE_NS)
    response = ET.SubElement(root, "Response", xmlns=OUTLOOK_NS)
    account = ET.SubElement(response, "Account")
    _text(account, "AccountType", "email")
    _text(account, "Action", "settings")

    protocols = (
        ("IMAP", endpoints.imaps, "SSL"),
        ("SMTP", endpoints.submissions, "SSL"),
        ("IMAP", endpoints.imap, "TLS"),
        ("SMTP", endpoints.submission, "TLS"),
    )
    for kind, port, encryption in protocols:
        protocol = ET.SubElement(account, "Protocol")
        _text(protocol, "Type", kind)
        _text(protocol, "Server", endpoints.hostname)
        _text(protocol, "Port", str(port))
        _text(protocol, "LoginName", login)
        _text(protocol, "DomainRequired", "off")
        _text(protocol, "SPA", "off")  # on would mean NTLM
        _text(protocol, "SSL", "on")
        _text(protocol, "Encryption", encryption)
        _text(protocol, "AuthRequired", "on")
    return _document(root)


def error_response(code: str, message: str) -> bytes:
    """An error answer, MS-OXDSCLI §2.2.4.1.1.3."""
    root = ET.Element("Autodiscover", xmlns=RESPONSE_NS)
    response = ET.SubElement(root, "Response")
    now = datetime.now(UTC).strftime("%H:%M:%S.%f")
    error = ET.SubElement(response, "Error", Time=now, Id="0")
    _text(error, "ErrorCode", code)
    _text(error, "Message", message)
    ET.SubElement(error, "DebugData")
    return _document(root)


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _document(root: ET.Element) -> bytes:
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


class Autodiscover:
    """The handler of every autodiscover path."""

    def __init__(self, endpoints: ClientEndpoints, accounts: Accounts) -> None:
        self.endpoints = endpoints
        self.accounts = accounts

    async def autodiscover(self, request: Request) -> Response:
        """POST autodiscover.xml: the settings for the requested address."""
        text, schema = parse_request(await read_bounded(request, MAX_REQUEST_BYTES))
        if schema and schema != OUTLOOK_NS:
            # ActiveSync clients ask for the mobilesync schema: nubo has none.
            message = "only the outlook 2006a response schema is offered"
            return Response(error_response(NO_PROVIDER, message), media_type=XML_TYPE)

        try:
            address = parse_address(text)
        except InvalidInput:
            raise HTTPException(400, "EMailAddress is not an email address") from None
        await hosted_domain(self.accounts, address.domain)
        answer = settings_response(str(address), self.endpoints)
        return Response(answer, media_type=XML_TYPE)


def routes(endpoints: ClientEndpoints, accounts: Accounts) -> list[Route]:
    handler = Autodiscover(endpoints, accounts)
    return [Route(path, handler.autodiscover, methods=["POST"]) for path in PATHS]
