"""The layout holds: imports point one way, with no cycle, and no module reaches into another room's
private names. Read from the source (imports inside functions included), as docs/architecture.md draws it.

Rooms, lowest first: the engine (the flat modules of ``deltaprop``) < teach, io, estimators < cli,
playground. A module may import its own room, the rooms below it and the rooms beside it (teach, io and
estimators may use one another, never the command); the package ``__init__`` is the public facade and
is not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "deltaprop"

# Rooms and their level: a module may import rooms of its own level or lower.
LEVEL = {"engine": 0, "teach": 1, "io": 1, "estimators": 1, "scale": 2, "cli": 3, "playground": 3}
# Third-party libraries the engine must never import (the core needs NumPy alone).
ENGINE_FORBIDDEN = ("sklearn", "matplotlib", "rich", "safetensors", "scipy", "pandas", "torch", "onnx",
                    "onnxruntime", "dask", "distributed", "flask", "tqdm", "numba", "llvmlite")
# The allowances, by name: History.to_pandas() imports pandas inside the method, for the caller who
# asked for a DataFrame (import deltaprop and training never touch pandas); kernels.load() and
# kernels.load_step() import Numba (and its llvmlite, for the calls into BLAS) inside the function, for runs
# long enough to repay it, and everything works without it (same bits).
ENGINE_OPTIONAL = {("deltaprop.train", "pandas"), ("deltaprop.kernels", "numba"), ("deltaprop.kernels", "llvmlite")}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"
    if parts[1] == "estimators" or (len(parts) > 2 and parts[1] == "sklearn"):
        return "estimators"
    if parts[1] in LEVEL and len(parts) >= 2 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    if parts[1] in ("__main__",):
        return "cli"
    if parts[1] in LEVEL:
        return parts[1]
    return "engine"


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the file, nested ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [a.name for a in node.names]
            # ``from deltaprop.io import checkpoint`` imports the module deltaprop.io.checkpoint
            submodules = [n for n in names if f"{base}.{n}" in ALL]
            found += [(f"{base}.{n}", [], node.lineno) for n in submodules]
            if len(submodules) < len(names):
                found.append((base, [n for n in names if n not in submodules], node.lineno))
    return found


ALL = modules()


def internal_edges():
    """(importer, imported module, names, line) for imports between deltaprop's own modules."""
    for name, path in ALL.items():
        for target, names, line in imports_of(path, name):
            if target == "deltaprop" or target.startswith("deltaprop."):
                if target in ALL:
                    yield name, target, names, line


def test_modules_found():
    assert {"deltaprop.model", "deltaprop.cli.main", "deltaprop.teach.explain", "deltaprop.io.modelfile"} <= set(ALL)


def test_no_import_cycle():
    graph: dict[str, set[str]] = {n: set() for n in ALL}
    for src, dst, _, _ in internal_edges():
        if src != dst and room_of(src) != "facade" and room_of(dst) != "facade":
            graph[src].add(dst)
    # Tarjan-free check: depth-first search with colours, reporting the first cycle with its path.
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(n):
        colour[n] = GREY
        stack.append(n)
        for m in sorted(graph[n]):
            if colour[m] == GREY:
                cycle = stack[stack.index(m):] + [m]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if colour[m] == WHITE:
                visit(m)
        stack.pop()
        colour[n] = BLACK

    for n in sorted(graph):
        if colour[n] == WHITE:
            visit(n)


def test_imports_point_down_or_sideways():
    wrong = []
    for src, dst, _, line in internal_edges():
        a, b = room_of(src), room_of(dst)
        if "facade" in (a, b):
            continue
        if LEVEL[b] > LEVEL[a]:
            wrong.append(f"{src}:{line} ({a}) imports {dst} ({b})")
    assert not wrong, "imports that point up:\n" + "\n".join(wrong)


def test_engine_needs_numpy_alone():
    wrong = []
    for name, path in ALL.items():
        if room_of(name) != "engine":
            continue
        for target, _, line in imports_of(path, name):
            if target.split(".")[0] in ENGINE_FORBIDDEN and (name, target.split(".")[0]) not in ENGINE_OPTIONAL:
                wrong.append(f"{name}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_private_names_across_rooms():
    """``from deltaprop.x import _name`` or ``module._name`` across rooms: a public API is missing."""
    wrong = []
    for src, dst, names, line in internal_edges():
        if room_of(src) == room_of(dst):
            continue
        wrong += [f"{src}:{line} takes {dst}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
    # attribute access on imported modules: report.x._private
    for name, path in ALL.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deltaprop"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in ALL:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in ALL and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and room_of(aliases[node.value.id]) != room_of(name)):
                wrong.append(f"{name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not wrong, "\n".join(wrong)


def test_import_deltaprop_needs_numpy_alone():
    import subprocess
    import sys

    code = ("import sys, deltaprop; heavy = {'sklearn', 'matplotlib', 'rich', 'scipy', 'pandas', 'torch', 'onnx', "
            "'dask', 'flask', 'safetensors', 'numba', 'llvmlite'}; print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert out.stdout.strip() == "[]"


def test_version_written_once():
    import deltaprop

    pyproject = (PACKAGE.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject and "version = \"" not in pyproject.split("[project]")[1].split("[")[0]
    assert deltaprop.__version__.count(".") == 2
