"""The Apple configuration profile, behind HTTP Basic."""

from __future__ import annotations

import base64
import plistlib
import uuid
from typing import Any

from nubo.accounts import Accounts, ManualClock
from nubo.config import Config
from nubo.runtime import Runtime
from nubo.web.app import build_app
from nubo.web.basic import PLAIN_HTTP_REFUSED
from nubo.web.mobileconfig import PATH
from tests.web.conftest import ADDRESS, ENDPOINTS, PASSWORD, MakeClient


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def mail_payload(document: dict[str, Any]) -> dict[str, Any]:
    (payload,) = document["PayloadContent"]
    assert isinstance(payload, dict)
    return payload


async def test_the_profile_sets_up_the_signed_in_users_imap_account(
    make_client: MakeClient,
) -> None:
    answer = await make_client().get(PATH, headers=basic(ADDRESS, PASSWORD))

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-apple-aspen-config"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.headers["cache-control"] == "no-store"
    assert PASSWORD.encode() not in answer.content

    document = plistlib.loads(answer.content)
    assert document["PayloadType"] == "Configuration"
    assert document["PayloadVersion"] == 1
    mail = mail_payload(document)
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == ADDRESS
    assert mail["IncomingMailServerHostName"] == ENDPOINTS.hostname
    assert mail["IncomingMailServerPortNumber"] == 1993
    assert mail["IncomingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == ADDRESS
    assert mail["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    assert mail["OutgoingMailServerHostName"] == ENDPOINTS.hostname
    assert mail["OutgoingMailServerPortNumber"] == 1465
    assert mail["OutgoingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    assert "IncomingPassword" not in mail
    assert "OutgoingPassword" not in mail


async def test_payload_uuids_are_unique_and_identifiers_stable(
    make_client: MakeClient,
) -> None:
    client = make_client()
    first = plistlib.loads(
        (await client.get(PATH, headers=basic(ADDRESS, PASSWORD))).content
    )
    second = plistlib.loads(
        (await client.get(PATH, headers=basic(ADDRESS, PASSWORD))).content
    )

    uuids = [
        first["PayloadUUID"],
        mail_payload(first)["PayloadUUID"],
        second["PayloadUUID"],
        mail_payload(second)["PayloadUUID"],
    ]
    assert len(set(uuids)) == 4
    assert all(str(uuid.UUID(text)).upper() == text for text in uuids)
    assert first["PayloadIdentifier"] == second["PayloadIdentifier"]
    assert first["PayloadIdentifier"].startswith("net.example.mail.")


async def test_no_credentials_is_401_with_the_challenge(
    make_client: MakeClient,
) -> None:
    answer = await make_client().get(PATH)

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="nubo", charset="UTF-8"'


async def test_a_wrong_password_is_401(make_client: MakeClient) -> None:
    answer = await make_client().get(PATH, headers=basic(ADDRESS, "wrong horse"))

    assert answer.status_code == 401
    assert answer.text == "wrong address or password"
    assert answer.headers["www-authenticate"].startswith("Basic ")


async def test_malformed_credentials_are_401(make_client: MakeClient) -> None:
    client = make_client()
    for header in ("Basic !!!not-base64", "Bearer abc", "Basic " + "bm9jb2xvbg=="):
        answer = await client.get(PATH, headers={"authorization": header})
        assert answer.status_code == 401, header


async def test_an_app_password_signs_in(
    make_client: MakeClient, accounts: Accounts
) -> None:
    _record, secret = await accounts.add_app_password(ADDRESS, "iphone")

    answer = await make_client().get(PATH, headers=basic(ADDRESS, secret))

    assert answer.status_code == 200
    assert mail_payload(plistlib.loads(answer.content))["EmailAddress"] == ADDRESS


async def test_plain_http_from_the_network_is_refused_before_any_check(
    make_client: MakeClient, accounts: Accounts
) -> None:
    client = make_client("http://example.org")
    answer = await client.get(PATH, headers=basic(ADDRESS, PASSWORD))

    assert answer.status_code == 403
    assert answer.text == PLAIN_HTTP_REFUSED
    assert "https://" in answer.text
    assert (await accounts.get_user(ADDRESS)).last_login_at is None


async def test_plain_http_from_loopback_is_accepted(make_client: MakeClient) -> None:
    for peer in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        client = make_client("http://localhost", peer=peer)
        answer = await client.get(PATH, headers=basic(ADDRESS, PASSWORD))
        assert answer.status_code == 200, peer


async def test_a_locked_account_is_429(
    make_client: MakeClient, runtime: Runtime, config: Config
) -> None:
    # The default threshold, on a clock that waits out the short locks at once.
    strict = Accounts(runtime.db, config, clock=ManualClock())
    client = make_client(target=build_app(runtime, ENDPOINTS, strict))

    # The 8th failure locks for 8 s, longer than an attempt is made to wait.
    for _ in range(8):
        failed = await client.get(PATH, headers=basic(ADDRESS, "wrong horse"))
        assert failed.status_code == 401
    locked = await client.get(PATH, headers=basic(ADDRESS, PASSWORD))

    assert locked.status_code == 429
    assert locked.text == "too many failed sign-ins: try again later"
