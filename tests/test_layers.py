"""The floors of docs/ARCHITECTURE.md hold, and an import that points upward fails ``lint-imports``.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``); ``make lint`` runs them. Here they run
against the real tree, and against a copy of it with one upward import added, which must break them.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "feedback_store", "finetune", "ui")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# Function-local imports of the project's own modules are allowed only to defer a heavy third-party library
# that the imported module loads at import time.
DEFERRED = {
    ("agent/graphdb/__init__.py", "agent.graphdb.neo4j"): "the neo4j driver, for Neo4j users only",
    # ``cypherloop ask`` answered by a running ``serve`` imports none of these (tests/test_ask_server.py):
    ("ui/cli_ask.py", "feedback_store.chroma"): "chromadb, only when this process answers",
    ("ui/cli_ask.py", "agent.models"): "torch/transformers or ctranslate2, only when this process answers",
    ("ui/cli_ask.py", "feedback_store.pool"): "the embedding model, only when this process answers",
    ("ui/cli_ask.py", "agent.factory"): "langgraph, imported while the model loads in another thread",
}


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_tree_keeps_every_contract():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "broken" not in proc.stdout.replace("0 broken", "")


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("agent/models/llamacpp.py", "from finetune.registry import AdapterRegistry", "Floors"),
        ("finetune/train.py", "from ui.cli import main", "Floors"),
        ("feedback_store/chroma.py", "from agent.graph import CypherAgent", "Floors"),
        ("agent/core/settings.py", "import agent.graphdb", "Floors"),
        ("agent/graph.py", "import feedback_store.chroma", "never the feedback store"),
        ("finetune/dataset.py", "from finetune.train import read_records", "No import cycles"),
    ],
)
def test_an_upward_import_breaks_the_lint(tmp_path, module, line, contract):
    for pkg in PACKAGES:
        shutil.copytree(
            ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("data", "__pycache__", "recipes")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    # inside a function, as a deferred import would be: it counts all the same
    target.write_text(target.read_text() + f"\n\ndef _upward() -> None:\n    {line}  # noqa\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0, proc.stdout[-2000:]
    broken = (
        proc.stdout[proc.stdout.index("Broken contracts") :]
        if "Broken contracts" in proc.stdout
        else proc.stdout
    )
    assert contract in broken, proc.stdout[-3000:]


def _function_local_imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for sub in ast.walk(node):
            names = ([sub.module or ""] if isinstance(sub, ast.ImportFrom) else
                     [a.name for a in sub.names] if isinstance(sub, ast.Import) else [])
            out += [(sub.lineno, name) for name in names if name.split(".")[0] in PACKAGES]
    return out


def test_no_function_local_import_of_the_project_s_own_modules():
    found = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found += [
                f"{rel}:{no}: {name}"
                for no, name in _function_local_imports(path)
                if (rel, name) not in DEFERRED
            ]
    assert not found, (
        "import these at the top of the module (or defer a heavy library in DEFERRED):\n" + "\n".join(found)
    )
