"""``python -m skinfo demo``."""

import sys

from .cli import main

sys.exit(main())
