"""research.ipynb: opens with the dev install, labels every time column with its zone, never writes to the
store, and tells an empty store what to run; .ci/run_notebook.py checks the store is unchanged."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def cells(kind: str) -> list[str]:
    notebook = json.loads((ROOT / "research.ipynb").read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == kind]


def run_notebook_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_notebook", ROOT / ".ci" / "run_notebook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_notebook_opens_with_the_dev_install_and_jupyter_lab() -> None:
    first = cells("markdown")[0]
    assert "pip install -r requirements-dev.txt" in first and "jupyter lab research.ipynb" in first
    requirements = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert re.search(r"^jupyterlab==\d", requirements, re.MULTILINE)
    assert "jupyter lab research.ipynb" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_time_column_names_its_zone() -> None:
    code = "\n".join(cells("code"))
    columns = re.findall(r'"([^"]*(?:entry|exit|created|since|updated|at)[^"]*)":', code)
    timed = [
        c
        for c in columns
        if c.split(" (")[0] in {"entry", "exit", "created", "since", "updated", "at", "breaker since"}
    ]
    assert timed, columns
    assert all(c.endswith("(New York)") for c in timed), timed


def test_the_notebook_never_writes_to_the_store() -> None:
    code = "\n".join(cells("code"))
    assert not re.search(r"\.(save|delete|save_bytes|put|flush|retire|audit)\(", code)
    assert "LocalFolderStore" in code and "ReadOnlyObjectStore" in code


def test_an_empty_store_gets_a_hint_what_to_run() -> None:
    code = "\n".join(cells("code"))
    assert "No saved state in" in code and "tests.demo --storage" in code


def test_run_notebook_notices_a_changed_store(tmp_path: Path) -> None:
    module = run_notebook_module()
    (tmp_path / "a.json").write_text("{}", encoding="utf-8")
    before = module.fingerprint(tmp_path)
    assert module.fingerprint(tmp_path) == before
    (tmp_path / "a.json").write_text('{"x": 1}', encoding="utf-8")
    assert module.fingerprint(tmp_path) != before
