"""The import rules of the house, checked from the source (no module is imported or run).

Layers, lowest first; each may import only itself and the layers below it::

    kafka_medic  <-  blocks  <-  tasks  <-  flows  <-  deployments
    (core)           (config)    (I/O steps) (thin flows) (every way in)

Plus: no import cycle anywhere among our modules (inside a layer too: flows form a DAG), and the
core imports no Prefect. Every import statement counts -- at module level, inside functions, and
under ``if TYPE_CHECKING:`` -- because a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LAYERS: dict[str, int] = {"kafka_medic": 0, "blocks": 1, "tasks": 2, "flows": 3, "deployments": 4}
#: Third-party packages a layer may not use.
FORBIDDEN: dict[str, frozenset[str]] = {"kafka_medic": frozenset({"prefect", "prefect_aws"})}


@dataclass(frozen=True)
class Violation:
    kind: str  # "upward", "forbidden", "cycle"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.message}"


def discover(root: Path) -> dict[str, Path]:
    """Module name -> file, for every .py file under the layer packages of ``root``."""
    out: dict[str, Path] = {}
    for top in LAYERS:
        for path in sorted((root / top).rglob("*.py")) if (root / top).is_dir() else ():
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, known: Iterable[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement in ``path``; ``from p import m`` names the
    submodule ``p.m`` when it is one of ours."""
    known_set = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path.name == "__init__.py", node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in known_set else base, node.lineno))
    return out


def _ours(name: str, known: set[str]) -> str | None:
    """The longest module of ours that ``name`` is or is inside (``kafka_medic.x.Y`` -> ``kafka_medic.x``)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in known:
            return cand
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(root: Path) -> list[Violation]:
    """Every broken rule under ``root`` (empty: the house is in order)."""
    modules = discover(root)
    known = set(modules)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    violations: list[Violation] = []
    for module, path in modules.items():
        top = module.split(".")[0]
        for name, line in imports_of(module, path, known):
            where = f"{path.relative_to(root)}:{line}"
            first = name.split(".")[0]
            if first in FORBIDDEN.get(top, frozenset()):
                violations.append(Violation("forbidden", where, f"{module} ({top}) imports {name}"))
            target = _ours(name, known)
            if target is None:
                continue
            if target != module:
                graph[module].add(target)
            if LAYERS[target.split(".")[0]] > LAYERS[top]:
                violations.append(
                    Violation("upward", where, f"{module} ({top}) imports {target} ({target.split('.')[0]})")
                )
    for comp in _cycles(graph):
        violations.append(Violation("cycle", comp[0], " <-> ".join(comp)))
    return violations
