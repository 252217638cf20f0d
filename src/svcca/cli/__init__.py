"""Layer 5, the ``svcca`` command line: ``svcca compare``, ``svcca pairwise``, ``svcca demo``."""

from svcca.cli._main import main
from svcca.cli._options import UsageError, parse_keep

__all__ = ["UsageError", "main", "parse_keep"]
