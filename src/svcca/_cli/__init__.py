"""Layer 5, the ``svcca`` command line: ``svcca compare``, ``svcca pairwise``, ``svcca demo``."""

from svcca._cli._main import main
from svcca._cli._options import UsageError, parse_keep

__all__ = ["UsageError", "main", "parse_keep"]
