"""The first domain and administrator of an empty store.

``nubo serve`` calls ``bootstrap`` at start: on a store without any user it
creates the default domain and an administrator, so that a fresh install can
be signed in to at once. With users present it does nothing, so it is safe to
call on every start, and from several processes starting at once.
"""

from __future__ import annotations

import contextlib
import logging

from nubo.accounts.addresses import normalize_domain, parse_address
from nubo.accounts.errors import AlreadyExists
from nubo.accounts.passwords import generate_password
from nubo.accounts.service import Accounts
from nubo.config import Config

log = logging.getLogger(__name__)


async def bootstrap(
    accounts: Accounts, config: Config
) -> tuple[str, str | None] | None:
    """Create the first domain and administrator when there is no user at all.

    The domain is ``config.effective_domain``; the administrator is
    ``config.admin_address`` (default ``admin@`` that domain, whose own domain
    is created too) with ``config.admin_password``, or a generated password.
    Returns (address, the generated password or None), or None when users
    already exist. Invalid settings raise the accounts errors
    (InvalidDomain, InvalidAddress, InvalidPassword).
    """
    if await accounts.has_users():
        return None

    domain = normalize_domain(config.effective_domain)
    address = parse_address(config.admin_address or f"admin@{domain}")
    generated = None if config.admin_password else generate_password()
    password = config.admin_password or generated
    assert password is not None

    for name in sorted({domain, address.domain}):
        # The domain may come from an earlier start, or another process.
        with contextlib.suppress(AlreadyExists):
            await accounts.add_domain(name)

    try:
        user = await accounts.add_user(str(address), password, is_admin=True)
    except AlreadyExists:
        return None  # another process starting at the same time won
    log.info("first administrator created user_id=%d", user.id)
    return user.address, generated
