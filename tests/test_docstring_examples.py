"""The Examples sections of the public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "svcca._moments",
    "svcca._cca",
    "svcca._svcca",
    "svcca._pwcca",
    "svcca._pls",
    "svcca._pca",
    "svcca._pairwise",
    "svcca._streaming",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
