"""Anything that executes a command passes an argv list: no shell anywhere in the shipped code.

Why a static check: a shell turns every interpolated broker id, host name or path into a potential
command injection, and the code that runs commands (the sandbox, replacer scripts) is exactly the
code that handles such values. The check walks the AST of every shipped module (kafka_medic/,
flows/, tasks/, blocks/, deployments/), resolving import aliases, and refuses:

* ``shell=`` anything but a literal ``False`` on any call;
* ``os.system``, ``os.popen``, ``subprocess.getoutput``/``getstatusoutput`` (always a shell),
  ``asyncio.create_subprocess_shell`` and ``loop.subprocess_shell``, the ``commands`` module;
* a ``subprocess`` call (``run``, ``Popen``, ``call``, ``check_call``, ``check_output``) whose command
  is a string: a literal, an f-string, ``%``/``+``/``.format()`` formatting, ``" ".join(...)``,
  ``shlex.join(...)`` or ``str(...)`` - directly, or through a local variable assigned one of those
  in the same function (``cmd = shlex.join(argv); subprocess.run(cmd, ...)``);
* ``prefect_shell`` (its ShellOperation runs commands through a shell).

The checker itself is tested on snippets, so a green run means "checked", not "matched nothing".
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCANNED_DIRS = ("kafka_medic", "flows", "tasks", "blocks", "deployments")

_SUBPROCESS_RUNNERS = {"run", "Popen", "call", "check_call", "check_output"}
_ALWAYS_SHELL = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"),
    ("commands", "getoutput"),
    ("commands", "getstatusoutput"),
}
_SHELL_METHODS = {"subprocess_shell", "create_subprocess_shell"}  # loop.subprocess_shell(...)
_BANNED_MODULES = {"prefect_shell", "commands"}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


class _Checker(ast.NodeVisitor):
    """Collects violations in one module; ``runner_calls`` counts subprocess calls it examined."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.violations: list[Violation] = []
        self.runner_calls = 0
        # local name -> (module, attribute or None): "sp" -> ("subprocess", None), "run" -> ("subprocess", "run")
        self.aliases: dict[str, tuple[str, str | None]] = {}
        self._scopes: list[dict[str, list[ast.expr]]] = [{}]

    # ---------------------------------------------------------------- imports
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            root = a.name.split(".")[0]
            if root in _BANNED_MODULES:
                self._flag(node, f"imports {a.name} (runs commands through a shell)")
            self.aliases[a.asname or root] = (a.name if a.asname else root, None)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if mod.split(".")[0] in _BANNED_MODULES:
            self._flag(node, f"imports from {mod} (runs commands through a shell)")
        for a in node.names:
            self.aliases[a.asname or a.name] = (mod, a.name)

    # ----------------------------------------------------------------- scopes
    def _visit_scope(self, node: ast.AST) -> None:
        self._scopes.append({})
        # Assignments first, so a variable is known wherever it is used in the function.
        for sub in _walk_own_scope(node):
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    if isinstance(target, ast.Name):
                        self._scopes[-1].setdefault(target.id, []).append(sub.value)
            elif isinstance(sub, ast.AnnAssign | ast.AugAssign) and isinstance(sub.target, ast.Name) and sub.value:
                self._scopes[-1].setdefault(sub.target.id, []).append(sub.value)
        self.generic_visit(node)
        self._scopes.pop()

    visit_FunctionDef = _visit_scope
    visit_AsyncFunctionDef = _visit_scope

    def visit_Module(self, node: ast.Module) -> None:
        self._visit_scope(node)

    # ------------------------------------------------------------------ calls
    def _dotted(self, expr: ast.expr) -> str | None:
        """``os.path`` for ``os.path`` (or for ``p`` after ``import os.path as p``); None if not a name chain."""
        if isinstance(expr, ast.Name):
            mod, attr = self.aliases.get(expr.id, (expr.id, None))
            return f"{mod}.{attr}" if attr else mod
        if isinstance(expr, ast.Attribute):
            base = self._dotted(expr.value)
            return f"{base}.{expr.attr}" if base else None
        return None

    def _qualified(self, func: ast.expr) -> tuple[str, str] | None:
        """(module, function) for ``mod.fn(...)`` / ``alias.fn(...)`` / ``fn(...)`` imported from a module."""
        if isinstance(func, ast.Attribute):
            base = self._dotted(func.value)
            return (base, func.attr) if base else None
        if isinstance(func, ast.Name) and func.id in self.aliases:
            mod, attr = self.aliases[func.id]
            if attr is not None:
                return (mod, attr)
        return None

    def visit_Call(self, node: ast.Call) -> None:
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                self._flag(node, "shell= is not a literal False")
        q = self._qualified(node.func)
        if q in _ALWAYS_SHELL:
            self._flag(node, f"{q[0]}.{q[1]}() runs a shell")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _SHELL_METHODS:
            self._flag(node, f".{node.func.attr}() runs a shell")
        elif q is not None and q[0] == "subprocess" and q[1] in _SUBPROCESS_RUNNERS:
            self.runner_calls += 1
            command = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "args"), None)
            if command is not None and self._stringy(command, depth=0):
                self._flag(node, f"subprocess.{q[1]}() gets its command as a string; pass an argv list")
        self.generic_visit(node)

    def _stringy(self, expr: ast.expr, depth: int) -> bool:
        """True if ``expr`` evaluates to a ``str`` (as far as the AST shows)."""
        if isinstance(expr, ast.Constant):
            return isinstance(expr.value, str | bytes)
        if isinstance(expr, ast.JoinedStr):
            return True
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod | ast.Add):
            return self._stringy(expr.left, depth) or self._stringy(expr.right, depth)
        if isinstance(expr, ast.Call):
            f = expr.func
            if isinstance(f, ast.Attribute) and f.attr in {"format", "join"}:
                q = self._qualified(f)
                # "...".format(...), " ".join(argv), shlex.join(argv); os.path.join stays allowed.
                return q is None or q == ("shlex", "join") or q[0] not in {"os.path", "posixpath", "os"}
            if isinstance(f, ast.Name) and f.id == "str":
                return True
            return self._qualified(f) in {("shlex", "join"), ("shlex", "quote")}
        if isinstance(expr, ast.IfExp):
            return self._stringy(expr.body, depth) or self._stringy(expr.orelse, depth)
        if isinstance(expr, ast.Name) and depth < 5:
            for scope in reversed(self._scopes):
                if expr.id in scope:
                    return any(self._stringy(v, depth + 1) for v in scope[expr.id])
        return False

    def _flag(self, node: ast.AST, what: str) -> None:
        self.violations.append(Violation(self.path, getattr(node, "lineno", 0), what))


def _walk_own_scope(node: ast.AST):
    """Like ``ast.walk`` but without descending into nested functions, lambdas or classes."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        sub = todo.pop()
        yield sub
        if not isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(sub))


def check_source(source: str, path: str = "<snippet>") -> _Checker:
    checker = _Checker(path)
    checker.visit(ast.parse(source, filename=path))
    return checker


def shipped_modules() -> list[Path]:
    files: list[Path] = []
    for d in SCANNED_DIRS:
        root = REPO / d
        if root.is_dir():
            files += sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return files


# ------------------------------------------------------------------------------------ the rule


def test_shipped_code_runs_no_shell_and_passes_argv_lists() -> None:
    files = shipped_modules()
    assert len(files) >= 20, f"expected the shipped packages under {REPO}, found {len(files)} modules"
    violations: list[Violation] = []
    runner_calls = 0
    for path in files:
        checker = check_source(path.read_text(), str(path.relative_to(REPO)))
        violations += checker.violations
        runner_calls += checker.runner_calls
    assert not violations, "commands must be argv lists, never a shell:\n" + "\n".join(map(str, violations))
    # The sandbox and the Maven download run commands: the checker must have seen those calls.
    assert runner_calls >= 3, f"only {runner_calls} subprocess calls examined: is the checker still matching?"


# ----------------------------------------------------------------------- the checker is not vacuous

BAD = {
    "shell_true": "import subprocess\nsubprocess.run(['ls'], shell=True)\n",
    "shell_variable": "import subprocess\nflag = True\nsubprocess.run(['ls'], shell=flag)\n",
    "os_system": "import os\nos.system('ls')\n",
    "os_popen": "import os\nos.popen('ls').read()\n",
    "from_os_import_system": "from os import system as s\ns('ls')\n",
    "getoutput": "import subprocess\nsubprocess.getoutput('ls')\n",
    "string_command": "import subprocess\nsubprocess.run('ls -l')\n",
    "fstring_command": "import subprocess\nb = 3\nsubprocess.check_call(f'kill {b}')\n",
    "format_command": "import subprocess\nsubprocess.Popen('kill {}'.format(3))\n",
    "percent_command": "import subprocess\nsubprocess.call('kill %d' % 3)\n",
    "join_command": "import subprocess\nsubprocess.run(' '.join(['kill', '3']))\n",
    "shlex_join_then_run": (
        "import shlex, subprocess\ndef f(argv):\n    cmd = shlex.join(argv)\n    subprocess.run(cmd, check=True)\n"
    ),
    "alias_module": "import subprocess as sp\nsp.check_output('id')\n",
    "from_import_run": "from subprocess import run\nrun('id', check=False)\n",
    "args_keyword": "import subprocess\nsubprocess.run(args='id')\n",
    "asyncio_shell": "import asyncio\nasync def f():\n    await asyncio.create_subprocess_shell('id')\n",
    "loop_shell": "async def f(loop):\n    await loop.subprocess_shell(lambda: None, 'id')\n",
    "prefect_shell": "from prefect_shell import ShellOperation\n",
}

GOOD = {
    "argv_list": "import subprocess\nsubprocess.run(['kill', '3'], check=True)\n",
    "argv_variable": "import subprocess\ndef f(x):\n    argv = ['kill', str(x)]\n    subprocess.run(argv)\n",
    "same_name_elsewhere": (
        "import subprocess\ndef a():\n    cmd = 'x'\ndef b():\n    cmd = ['x']\n    subprocess.run(cmd)\n"
    ),
    "argv_star": "import subprocess\ndef f(base):\n    subprocess.Popen([*base, 'x'], shell=False)\n",
    "path_join": "import os, subprocess\nsubprocess.run([os.path.join('a', 'b')])\n",
    "shlex_join_for_display": "import shlex, logging\nlogging.info('running %s', shlex.join(['a', 'b']))\n",
    "exec_not_shell": "import asyncio\nasync def f():\n    await asyncio.create_subprocess_exec('kill', '3')\n",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_checker_flags_shell_patterns(name: str) -> None:
    assert check_source(BAD[name]).violations, f"the checker missed {name!r}"


@pytest.mark.parametrize("name", sorted(GOOD))
def test_checker_allows_argv_lists(name: str) -> None:
    assert check_source(GOOD[name]).violations == []
