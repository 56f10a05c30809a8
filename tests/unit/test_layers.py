"""The import rules of the house (tests/layers.py): the repository keeps them, and the checker catches
each way of breaking them (shown on small trees written for the purpose)."""

from __future__ import annotations

from pathlib import Path

from tests.layers import check, discover, imports_of

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_keeps_the_rules() -> None:
    violations = check(ROOT)
    assert not violations, "\n".join(map(str, violations))


def test_the_checker_reads_every_layer_of_the_repository() -> None:
    modules = discover(ROOT)
    for layer in ("kafka_medic", "blocks", "tasks", "flows", "deployments"):
        assert sum(m.split(".")[0] == layer for m in modules) >= 3, layer
    # It sees real arrows, not nothing: the health check imports remediation, the core imports no Prefect.
    names = {n for n, _ in imports_of("flows.health_check", modules["flows.health_check"], modules)}
    assert "flows.remediate" in names and "tasks.collect" in names


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for top in ("kafka_medic", "blocks", "tasks", "flows", "deployments"):
        (tmp_path / top).mkdir(exist_ok=True)
        (tmp_path / top / "__init__.py").touch()
    return tmp_path


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "kafka_medic/core.py": "import json\n",
        "tasks/t.py": "from kafka_medic.core import x\nimport prefect\n",
        "flows/a.py": "from flows.b import f\nfrom tasks.t import y\n",
        "flows/b.py": "from kafka_medic import core\n",
        "deployments/cli.py": "import flows.a\n",
    })  # fmt: skip
    assert check(root) == []


def test_an_upward_import_fails_even_inside_a_function(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "kafka_medic/core.py": "def f():\n    from flows.a import g\n    return g\n",
        "flows/a.py": "def g(): ...\n",
    })  # fmt: skip
    [v] = check(root)
    assert v.kind == "upward" and "kafka_medic.core (kafka_medic) imports flows.a (flows)" in v.message
    assert v.where == "kafka_medic/core.py:2"


def test_a_task_importing_a_flow_and_a_type_checking_import_fail(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "tasks/t.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from flows.a import A\n",
        "blocks/b.py": "from tasks.t import x\n",
        "flows/a.py": "A = 1\n",
    })  # fmt: skip
    kinds = sorted((v.kind, v.message) for v in check(root))
    assert kinds == [("upward", "blocks.b (blocks) imports tasks.t (tasks)"),
                     ("upward", "tasks.t (tasks) imports flows.a (flows)")]  # fmt: skip


def test_a_cycle_inside_one_layer_fails(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "flows/a.py": "from flows.b import x\n",
        "flows/b.py": "from flows.c import y\n",
        "flows/c.py": "from . import a\n",  # relative imports are resolved too
    })  # fmt: skip
    [v] = check(root)
    assert v.kind == "cycle" and v.message == "flows.a <-> flows.b <-> flows.c"


def test_the_core_may_not_import_prefect(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"kafka_medic/x.py": "from prefect.variables import Variable\n"})
    [v] = check(root)
    assert v.kind == "forbidden" and "imports prefect.variables" in v.message
