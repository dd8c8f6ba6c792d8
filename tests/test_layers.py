"""main.py's place on top of the layers (the packages' own layers are import-linter's, pyproject.toml).

import-linter checks packages; main.py is a module, so its two rules are checked here from the source text:
it is the one module that imports LEAN, and no package imports it back.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "strategies", "persistence", "recovery", "engine")
LEAN_MODULES = {"AlgorithmImports", "QuantConnect", "clr"}


def _imported_top_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _package_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py"))


def test_main_is_the_lean_adapter() -> None:
    assert LEAN_MODULES & _imported_top_names(REPO / "main.py")


def test_no_package_imports_main_or_lean() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(found)
        for path in _package_files()
        if (found := _imported_top_names(path) & (LEAN_MODULES | {"main"}))
    }
    assert offenders == {}


def test_every_package_file_is_checked() -> None:
    """The layer contracts name these packages: a new top-level package of the algorithm must be added there."""
    on_disk = {path.parent.name for path in REPO.glob("*/__init__.py")} - {"tests"}
    assert on_disk == set(PACKAGES)
    assert len(_package_files()) > 20
