"""The package version (one place: svcca.__version__ and every record of results read it)."""

__version__ = "0.2.0"
