"""``python -m svcca``: the command line."""

import sys

from svcca._cli import main

sys.exit(main())
