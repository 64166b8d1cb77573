"""Fixtures of the mail suite.

``mail`` (from ``mailstore_rig``): a mailstore on each storage pair, with a
LocalBus, for every test that stores mail.
"""

from __future__ import annotations

from tests.mail.mailstore_rig import mail, mail_pair  # noqa: F401 (fixtures)
from tests.seaweed import seaweed  # noqa: F401 (the fixture)
