"""The layering of docs/architecture.md, checked on the source: which package may import which, no import
cycle between modules, no import hidden inside a function to get around one, no module grown past
~450 lines without a reason at its top.

Read from the files with :mod:`ast`; nothing is imported, so a violation is named with its file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = "core"
PARTS = ("monitor", "anomaly", "tickets", "runbooks", "dashboards")
WIRING = "hypercare"
PACKAGES = (CORE, *PARTS, WIRING)
MAX_LINES = 450
SIZE_REASON = "# size:"

FORBIDDEN: dict[str, frozenset[str]] = {
    CORE: frozenset({*PARTS, WIRING}),
    "monitor": frozenset({"anomaly", "tickets", "runbooks", "dashboards", WIRING}),
    "anomaly": frozenset({"tickets", "runbooks", "dashboards", WIRING}),
    "tickets": frozenset({"monitor", "dashboards", WIRING}),
    "runbooks": frozenset({"dashboards", WIRING}),
    "dashboards": frozenset({"runbooks"}),
}
"""Package -> packages it must never import (the arrows of the layer picture point the other way)."""

ONLY: dict[tuple[str, str], frozenset[str]] = {
    # anomaly reads what the monitor produces (result types, settings), never its I/O
    ("anomaly", "monitor"): frozenset(
        {
            "monitor.results",
            "monitor.settings",
            "monitor.intervals",
            "monitor.check_ids",
            "monitor.dualrun.model",
        }
    ),
    # the queue shows runbook content and checklists; diagnostics and verification reach the ERP and are
    # plugged in by the wiring through tickets/ports.py
    ("tickets", "runbooks"): frozenset({"runbooks.library", "runbooks.models", "runbooks.steps"}),
    # the queue knows events, not detectors
    ("tickets", "anomaly"): frozenset({"anomaly.events"}),
    # the dashboards are a process of their own: they read the settings file as the CLI does
    ("dashboards", WIRING): frozenset({"hypercare.config"}),
}
"""(package, imported package) -> the only modules of it that may be imported."""

LAZY_IMPORTS_ALLOWED = ("hypercare/cli.py", "hypercare/commands/")
"""Where a first-party import may sit inside a function: each CLI command imports what it runs, so that
`hypercare --help` does not load the whole product."""


@dataclass(frozen=True)
class Import:
    path: str
    line: int
    module: str
    in_function: bool
    type_only: bool

    @property
    def package(self) -> str:
        return self.module.split(".")[0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path, root: Path = ROOT) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    in_function: set[int] = set()
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
    rel = str(path.relative_to(root))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from pkg import mod` imports pkg.mod when mod is a module: count the deeper name
            names = [
                f"{node.module}.{alias.name}"
                if (root / node.module.replace(".", "/") / f"{alias.name}.py").exists()
                else node.module
                for alias in node.names
            ]
        for name in names:
            if name.split(".")[0] in PACKAGES:
                yield Import(rel, node.lineno, name, id(node) in in_function, id(node) in type_only)


ALL = [(path, imp) for path in _sources() for imp in _imports(path)]


def _owner(path: str) -> str:
    return path.split("/", maxsplit=1)[0]


def test_no_package_imports_a_layer_above_it() -> None:
    bad = []
    for _path, imp in ALL:
        owner = _owner(imp.path)
        if imp.package == owner:
            continue
        if imp.package in FORBIDDEN.get(owner, frozenset()):
            bad.append(f"{imp.path}:{imp.line} imports {imp.module} ({owner} must not import {imp.package})")
            continue
        allowed = ONLY.get((owner, imp.package))
        if allowed is not None and not any(
            imp.module == m or imp.module.startswith(m + ".") for m in allowed
        ):
            bad.append(
                f"{imp.path}:{imp.line} imports {imp.module}; {owner} may use only {sorted(allowed)} of "
                f"{imp.package}"
            )
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_no_first_party_import_hides_inside_a_function() -> None:
    bad = [
        f"{imp.path}:{imp.line} imports {imp.module} inside a function"
        for _path, imp in ALL
        if imp.in_function and not imp.path.startswith(LAZY_IMPORTS_ALLOWED)
    ]
    assert not bad, "move these imports to the top (fix the cycle they hide, if any):\n" + "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path) for path in _sources()}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path, imp in ALL:
        if imp.in_function or imp.type_only:
            continue
        target = imp.module
        while target and target not in modules:  # `from pkg.mod import name` -> pkg.mod
            target = target.rpartition(".")[0]
        source = _module_name(path)
        if target and target != source:
            graph[source].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_between_modules() -> None:
    # A package's __init__ that re-exports its modules is not a cycle of design: leave packages out.
    graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_a_long_module_says_why_at_its_top() -> None:
    bad = []
    for path in _sources():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES and not any(line.startswith(SIZE_REASON) for line in lines[:80]):
            bad.append(f"{path.relative_to(ROOT)}: {len(lines)} lines and no '{SIZE_REASON} <reason>' line")
    assert not bad, "split these modules or say why they are long:\n" + "\n".join(bad)


def test_the_checker_sees_imports_at_any_depth(tmp_path: Path) -> None:
    """The rules above are only as good as the import reader: top-level, in a function, type-only."""
    (tmp_path / "tickets").mkdir()
    path = tmp_path / "tickets" / "x.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "import monitor.checks\n"
        "if TYPE_CHECKING:\n    from anomaly.events import Event\n"
        "def f():\n    from hypercare.config import Settings\n",
        encoding="utf-8",
    )
    seen = {(i.module, i.in_function, i.type_only) for i in _imports(path, root=tmp_path)}
    assert seen == {
        ("monitor.checks", False, False),
        ("anomaly.events", False, True),
        ("hypercare.config", True, False),
    }


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
