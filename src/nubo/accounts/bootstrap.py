"""The first domain and administrator of an empty store.

``nubo serve`` calls ``bootstrap`` at start: on a store without any user it
creates the default domain and an administrator, so that a fresh install can
be signed in to at once. With users present it does nothing, so it is safe to
call on every start, and from several processes starting at once.
"""

from __future__ import annotations

import contextlib
import logging

from nubo.accounts.addresses import Address, normalize_domain, parse_address
from nubo.accounts.errors import AlreadyExists, InvalidAddress, InvalidDomain
from nubo.accounts.passwords import generate_password
from nubo.accounts.service import Accounts
from nubo.config import Config, ConfigError

log = logging.getLogger(__name__)


async def bootstrap(
    accounts: Accounts, config: Config
) -> tuple[str, str | None] | None:
    """Create the first domain and administrator when there is no user at all.

    The domain is ``config.effective_domain``; the administrator is
    ``config.admin_address`` (default ``admin@`` that domain, whose own domain
    is created too) with ``config.admin_password``, or a generated password.
    Returns (address, the generated password or None), or None when users
    already exist. A bad hostname, default_domain or admin_address is a
    ConfigError naming it; a bad admin_password raises InvalidPassword.
    """
    domain, address = first_admin(config)
    if await accounts.has_users():
        return None

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


def first_admin(config: Config) -> tuple[str, Address]:
    """The first domain and administrator the settings name, checked.

    Checked on every start, not only the first, so a bad name is reported
    before anything is served rather than on the day the store is empty.
    """
    for name in ("hostname", "default_domain"):
        value = str(config.values[name])
        if name == "hostname" or value:
            try:
                normalize_domain(value)
            except InvalidDomain as exc:
                raise ConfigError(f"setting {name}: {exc}") from None

    domain = normalize_domain(config.effective_domain)
    try:
        address = parse_address(config.admin_address or f"admin@{domain}")
    except (InvalidAddress, InvalidDomain) as exc:
        raise ConfigError(f"setting admin_address: {exc}") from None
    return domain, address
