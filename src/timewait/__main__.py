"""``python -m timewait``: the same command line as ``timewait``."""

import sys

from .cli import main

sys.exit(main())
