"""An Apple configuration profile that sets up the signed-in user's mail.

Apple Mail (iOS, iPadOS, macOS) looks for neither autoconfig nor
autodiscover; it installs a configuration profile, a property list whose
payload of type ``com.apple.mail.managed`` describes one IMAP account
(Apple's Device Management reference, "Mail"). ``GET /apple/mail.mobileconfig``
answers one for the user signed in with HTTP Basic (see ``basic``), as a
download (``application/x-apple-aspen-config``).

Apple takes one server per direction, so the profile names IMAP and
submission with implicit TLS (RFC 8314 §3.3), on ``hostname``, the address
as user name and a password sent inside TLS (``EmailAuthPassword``). No
password is put in the profile: the device asks for it at installation.

Each download has new PayloadUUIDs; the PayloadIdentifiers are the same for
a user every time, so installing a newer profile replaces the older one.

Limitation: the profile is not signed, so the device shows it as
"unverified"; signing it needs the certificate of a public authority.
"""

from __future__ import annotations

import logging
import plistlib
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nubo.accounts.models import User
from nubo.accounts.service import Accounts
from nubo.web.basic import signed_in_user
from nubo.web.endpoints import ClientEndpoints

log = logging.getLogger(__name__)

PATH = "/apple/mail.mobileconfig"
MEDIA_TYPE = "application/x-apple-aspen-config"
FILE_NAME = "mail.mobileconfig"


def profile(user: User, endpoints: ClientEndpoints) -> bytes:
    """The configuration profile (XML property list) of ``user``'s mail."""
    identifier = _identifier(endpoints.hostname, user)
    account: dict[str, Any] = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.account",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": user.address,
        "EmailAccountDescription": user.address,
        "EmailAccountName": user.display_name or user.address,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": user.address,
        "IncomingMailServerHostName": endpoints.hostname,
        "IncomingMailServerPortNumber": endpoints.imaps,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": user.address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": endpoints.hostname,
        "OutgoingMailServerPortNumber": endpoints.submissions,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": user.address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    document = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": f"Mail of {user.address}",
        "PayloadDescription": f"Sets up {user.address} on {endpoints.hostname}.",
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [account],
    }
    return plistlib.dumps(document, fmt=plistlib.FMT_XML, sort_keys=True)


def _identifier(hostname: str, user: User) -> str:
    """A reverse-DNS identifier, the same for one user on one server."""
    reverse = ".".join(reversed(hostname.rstrip(".").split(".")))
    return f"{reverse}.nubo.mail.user{user.id}"


class MobileConfig:
    def __init__(self, endpoints: ClientEndpoints, accounts: Accounts) -> None:
        self.endpoints = endpoints
        self.accounts = accounts

    async def download(self, request: Request) -> Response:
        """GET /apple/mail.mobileconfig: the profile of the signed-in user."""
        user = await signed_in_user(request, self.accounts)
        headers = {
            "content-disposition": f'attachment; filename="{FILE_NAME}"',
            "cache-control": "no-store",  # it names the user
        }
        log.info("apple profile served user_id=%d", user.id)
        body = profile(user, self.endpoints)
        return Response(body, media_type=MEDIA_TYPE, headers=headers)


def routes(endpoints: ClientEndpoints, accounts: Accounts) -> list[Route]:
    handler = MobileConfig(endpoints, accounts)
    return [Route(PATH, handler.download, methods=["GET"])]
