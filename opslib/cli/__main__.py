"""``python -m opslib.cli``."""

import sys

from opslib.cli import main

sys.exit(main())
