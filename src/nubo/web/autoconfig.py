"""Thunderbird's autoconfiguration: the clientConfig 1.1 XML file.

Thunderbird (and K-9/Thunderbird for Android, Evolution, KMail) asks, for an
address at ``example.org``, for
``https://autoconfig.example.org/mail/config-v1.1.xml?emailaddress=...`` and
``https://example.org/.well-known/autoconfig/mail/config-v1.1.xml?...``; both
paths are served here by one handler. The format has no RFC: it is Mozilla's
"Thunderbird:Autoconfiguration:ConfigFileFormat", the one of the ISPDB.

The answer names, for a domain nubo hosts, IMAP with implicit TLS and with
STARTTLS, then submission with implicit TLS and with STARTTLS (implicit TLS
first, as RFC 8314 §5.1 asks clients to prefer it), all on ``hostname``, the
full address as user name and a password sent inside TLS. A domain nubo
does not host is 404: the answer would point its users at a server that
refuses them.

The file is the same for every user of a domain, so nothing here signs
anyone in and no address is logged.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nubo.accounts.models import Domain
from nubo.accounts.service import Accounts
from nubo.web.endpoints import ClientEndpoints

log = logging.getLogger(__name__)

XML_TYPE = "application/xml; charset=utf-8"
PATHS = ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml")
HOST_PREFIX = "autoconfig."

# Placeholders Thunderbird fills in with what the user typed.
EMAIL_ADDRESS = "%EMAILADDRESS%"
# A password that only TLS protects, the only kind nubo takes (AUTH PLAIN,
# LOGIN); "password-encrypted" would be CRAM-MD5, which nubo does not offer.
AUTHENTICATION = "password-cleartext"


async def hosted_domain(accounts: Accounts, name: str) -> Domain:
    """The hosted domain ``name``, or a 404 that every client format shares."""
    domain = await accounts.find_domain(name)
    if domain is None:
        log.debug("client configuration refused: domain not hosted")
        raise HTTPException(404, "this server hosts no mail for that domain")
    return domain


def asked_domain(request: Request) -> str:
    """The domain of ``emailaddress``, else of the Host (less ``autoconfig.``)."""
    address = request.query_params.get("emailaddress")
    if address is not None:
        local, at, domain = address.strip().rpartition("@")
        if not at or not local or not domain:
            raise HTTPException(400, "emailaddress is not an email address")
        return domain

    host = request.url.hostname or ""
    return host.removeprefix(HOST_PREFIX)


def client_config(domain: str, endpoints: ClientEndpoints) -> bytes:
    """The clientConfig 1.1 document for ``domain`` (A-label form)."""
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    _text(provider, "domain", domain)
    _text(provider, "displayName", f"{domain} mail")
    _text(provider, "displayShortName", domain)

    servers = (
        ("incomingServer", "imap", endpoints.imaps, "SSL"),
        ("incomingServer", "imap", endpoints.imap, "STARTTLS"),
        ("outgoingServer", "smtp", endpoints.submissions, "SSL"),
        ("outgoingServer", "smtp", endpoints.submission, "STARTTLS"),
    )
    for tag, kind, port, socket_type in servers:
        server = ET.SubElement(provider, tag, type=kind)
        _text(server, "hostname", endpoints.hostname)
        _text(server, "port", str(port))
        _text(server, "socketType", socket_type)
        _text(server, "username", EMAIL_ADDRESS)
        _text(server, "authentication", AUTHENTICATION)

    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


class Autoconfig:
    """The handler of both autoconfig paths."""

    def __init__(self, endpoints: ClientEndpoints, accounts: Accounts) -> None:
        self.endpoints = endpoints
        self.accounts = accounts

    async def config_v11(self, request: Request) -> Response:
        """GET config-v1.1.xml: the clientConfig of the asked domain."""
        domain = await hosted_domain(self.accounts, asked_domain(request))
        body = client_config(domain.name, self.endpoints)
        return Response(body, media_type=XML_TYPE)


def routes(endpoints: ClientEndpoints, accounts: Accounts) -> list[Route]:
    handler = Autoconfig(endpoints, accounts)
    return [Route(path, handler.config_v11, methods=["GET"]) for path in PATHS]
