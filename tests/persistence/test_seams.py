"""The seams of persistence: the codec is the only door to the domain, the writer process loads none
of the server, and the examples in the modules' docstrings run."""

from __future__ import annotations

import ast
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "persistence"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """Every module `path` imports, and whether the import sits under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            type_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in type_only) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, id(node) in type_only))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_only_the_codec_imports_the_domain_and_nothing_else_of_the_server_at_run_time(module):
    for name, type_only in imports_of(PACKAGE / f"{module}.py"):
        if name.startswith("hcserver.domain"):
            assert module == "codec", f"persistence/{module}.py imports {name}"
        elif name.startswith("hcserver"):
            assert type_only, f"persistence/{module}.py imports {name} at run time"


def test_the_writer_process_loads_none_of_the_server():
    code = "import sys, persistence.writer; print(' '.join(sys.modules))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not {m for m in loaded if m.startswith(("hcserver", "aiosqlite", "tornado"))}
    assert {m for m in loaded if m.startswith("persistence.")} == {
        "persistence.writer", "persistence.protocol", "persistence.schema", "persistence.lock",
    }  # fmt: skip


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    # An example written with ">>>" is a doctest: it must run and give what it shows.
    mod = importlib.import_module(f"persistence.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, report=False)
    assert result.failed == 0, f"{result.failed} docstring examples of persistence.{module} failed"
    if module == "codec":
        assert result.attempted > 0
