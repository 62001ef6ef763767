"""The package's layers: no module imports a layer above its own.

From the bottom: the values (errors, JIDs, keys, the device, value types and
commands); the contract, which depends on values only; what the backends
share (``backends/sql``, options, retries, and the portable account format,
which is the SQL row layout as a document); the backends themselves, none of
which imports another; the URL registry; the manager and the Signal cache;
administration. The command line, the interop adapters and account formats,
the contract test suite and the package root may use anything.

Every import counts, a lazy one inside a function too. The test reads the
source, so it fails on the commit that adds an upward import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "wastore"

# (rank, module or package prefixes); a module takes the rank of its longest prefix.
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (
        0,
        (
            "wastore.errors",
            "wastore._validate",
            "wastore.jid",
            "wastore.keys",
            "wastore.device",
            "wastore.values",
            "wastore.commands",
        ),
    ),
    (1, ("wastore.contract",)),
    (
        2,
        (
            "wastore.backends",
            "wastore.backends._common",
            "wastore.backends._txn",
            "wastore.backends.options",
            "wastore.backends.retry",
            "wastore.backends.sql",
            "wastore.portable",
        ),
    ),
    (4, ("wastore.backends.memory", "wastore.backends.sqlite", "wastore.backends.postgres")),
    (5, ("wastore.registry",)),
    (6, ("wastore.cache", "wastore.manager")),
    (7, ("wastore.admin",)),
]
TOP = 99  # cli, interop, formats, testing, bench, demo, the package root
ENGINES = ("wastore.backends.memory", "wastore.backends.sqlite", "wastore.backends.postgres")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def rank(module: str) -> int:
    best, found = -1, TOP
    for r, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), r
    return found


def engine_of(module: str) -> str | None:
    return next((e for e in ENGINES if module == e or module.startswith(e + ".")), None)


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import of wastore modules in the file."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("wastore")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("wastore"):
                continue
            names = [a.name for a in node.names]
            if not node.module:  # "from . import x": x is a module
                out += [(node.lineno, f"{target}.{n}", []) for n in names]
            else:
                out.append((node.lineno, target, names))
    return out


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    me = module_name(path)
    problems = []
    for line, target, _ in imports(path):
        if rank(target) > rank(me):
            problems.append(
                f"line {line}: {me} (layer {rank(me)}) imports {target} ({rank(target)})"
            )
        mine, theirs = engine_of(me), engine_of(target)
        if mine and theirs and mine != theirs:
            problems.append(f"line {line}: backend {me} imports another backend, {target}")
    assert not problems, "\n".join(problems)


def test_the_contract_depends_on_values_only() -> None:
    targets = {t for _, t, _ in imports(ROOT / "contract.py")}
    assert targets and all(rank(t) == 0 for t in targets), targets


@pytest.mark.parametrize(
    "path", sorted((ROOT / "admin").glob("*.py")), ids=lambda p: module_name(p)
)
def test_admin_uses_no_private_name_of_another_module(path: Path) -> None:
    tree = ast.parse(path.read_text())
    problems = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    problems += [
        f"line {line}: from {target} import {name}"
        for line, target, names in imports(path)
        for name in names
        if name.startswith("_")
    ]
    assert not problems, "\n".join(problems)


def test_the_layer_table_knows_every_package() -> None:
    # A new top-level module must be placed in a layer on purpose, not by default.
    top_level = {module_name(p) for p in ROOT.glob("*.py")} | {
        module_name(p) for p in ROOT.glob("*/__init__.py")
    }
    placed = {m for m in top_level if rank(m) != TOP}
    unplaced = top_level - placed
    assert unplaced <= {
        "wastore",
        "wastore.cli",
        "wastore.interop",
        "wastore.formats",
        "wastore.testing",
        "wastore.bench",
        "wastore.demo",
    }, unplaced
