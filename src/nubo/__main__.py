"""``python -m nubo``: the same as the ``nubo`` command."""

import sys

from nubo.cli import main

sys.exit(main())
