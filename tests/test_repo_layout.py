"""The test suite's own layout: every ``test_*.py`` module holds tests, helper modules are named
``_*.py``, and a fixture used by several modules lives once, in tests/conftest.py."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_fixture(node: ast.FunctionDef) -> bool:
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
    return False


def _functions(path: Path) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_every_test_module_holds_tests():
    empty = [p.name for p in sorted(TESTS.glob("test_*.py"))
             if not any(f.name.startswith("test_") for f in _functions(p))]
    assert not empty, f"modules without tests (name helpers _*.py, fixtures go to conftest.py): {empty}"


def test_fixtures_are_defined_once():
    where = defaultdict(list)
    for path in sorted(TESTS.glob("*.py")):
        for f in _functions(path):
            if _is_fixture(f):
                where[f.name].append(path.name)
    twice = {name: files for name, files in where.items() if len(files) > 1}
    assert not twice, f"fixtures defined in several modules (move them to tests/conftest.py): {twice}"
    assert {"single_thread", "workdir"} <= {n for n, files in where.items() if files == ["conftest.py"]}
