"""Every `>>>` example in hcserver's docstrings runs and shows what it gives."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import hcserver

MODULES = ["hcserver", *(m.name for m in pkgutil.walk_packages(hcserver.__path__, "hcserver."))]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=False)
    assert result.failed == 0, f"{result.failed} docstring examples of {name} failed"
    # an example doctest cannot find (outside a docstring, say) would pass unseen
    if ">>>" in Path(str(module.__file__)).read_text():
        assert result.attempted > 0
