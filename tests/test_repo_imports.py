"""The layers of ichseg hold: each imports only the ones below it (.importlinter, import-linter).

cli -> study | report -> engine -> data | models | metrics -> diffusion -> utils / errors, no import
cycle among the modules of any package, and only ``ichseg.engine.methods`` imports the nnU-Net adapter.
"""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept():
    cli = pytest.importorskip("importlinter.cli", reason="import-linter (the dev extra) is not installed")
    assert cli.lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True) == 0, \
        "run `lint-imports` for the imports that break the layers"


def test_the_contracts_cover_layers_cycles_and_the_method_registry():
    """The contracts that keep the graph one-way are declared (the test above checks them)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / ".importlinter")
    types = {cfg[s]["type"] for s in cfg.sections() if s.startswith("importlinter:contract:")}
    assert {"layers", "acyclic_siblings", "forbidden", "independence"} <= types
    assert cfg["importlinter:contract:acyclic"]["ancestors"].split() == ["ichseg"]


def _sccs(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_module_imports_itself_back():
    """Module level, function-level imports included: no cycle anywhere in ichseg (grimp's graph)."""
    grimp = pytest.importorskip("grimp", reason="grimp (installed with import-linter) is not installed")
    graph = grimp.build_graph("ichseg", cache_dir=None)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _sccs(edges) == []
    # the check can fail: a cycle is found
    assert _sccs({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
