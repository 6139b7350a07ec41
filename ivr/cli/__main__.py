"""``python -m ivr.cli``: the `ivr` command without its installed script (tests run units this way)."""

import sys

from ivr.cli import main

sys.exit(main())
