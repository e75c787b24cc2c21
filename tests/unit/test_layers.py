"""The folders show the layers, and imports only point down (docs/architecture.md).

Every import is counted, including those inside functions (lazy imports still make an
arrow) and those only for type checking.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS = (
    ("conductor.domain",),
    ("conductor.examples",),
    ("projections",),
    ("conductor.ledger",),
    ("conductor.observe",),
    ("conductor.engine",),
    ("conductor.client",),
    ("conductor.cli", "conductor.bench", "conductor.web", "conductor.__main__", "conductor"),
)
"""Lowest first: a module may import from its own layer or any layer listed before it."""

MAX_LINES = 420
"""About 400 lines: past that a module is holding two jobs."""

NOT_YET_SPLIT: set[str] = set()
"""Being split in issue 13; this set must be empty when it closes."""


def modules() -> dict[str, Path]:
    found = {}
    for package in ("conductor", "projections"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def layer(module: str) -> int:
    best, rank = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank >= 0, f"{module} is in no layer"
    return rank


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".strip(".")
            names = [f"{base}.{alias.name}" for alias in node.names]
            names = [name if name in known else base for name in names]
        else:
            continue
        for name in names:
            found = name
            while found and found not in known:
                found = found.rpartition(".")[0]
            if found and found != module:
                yield found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {module: set(imports(module, path, known)) for module, path in known.items()}


def test_every_import_points_to_the_same_layer_or_one_below() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        for target in targets
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_no_two_modules_import_each_other_even_lazily() -> None:
    edges = graph()
    cycles = []

    def visit(node: str, trail: list[str], seen: set[str]) -> None:
        for target in sorted(edges[node]):
            if target == trail[0]:
                cycles.append(" -> ".join([*trail, target]))
            elif target not in seen and target > trail[0]:
                seen.add(target)
                visit(target, [*trail, target], seen)

    for start in sorted(edges):
        visit(start, [start], {start})
    assert cycles == []


def test_no_module_is_much_over_four_hundred_lines() -> None:
    long = {
        module: n
        for module, path in modules().items()
        if module not in NOT_YET_SPLIT
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_only_the_dashboard_command_imports_the_web_package() -> None:
    importers = sorted(
        module
        for module, targets in graph().items()
        if not (module == "conductor.web" or module.startswith("conductor.web."))
        and any(t == "conductor.web" or t.startswith("conductor.web.") for t in targets)
    )
    assert importers == ["conductor.cli.dashboard"]
