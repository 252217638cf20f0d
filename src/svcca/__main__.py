"""``python -m svcca``: the command line."""

import sys

from svcca.cli import main

sys.exit(main())
