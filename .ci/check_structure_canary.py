"""Prove that the structure checks can fail: plant violations in a copy of the tree and expect each caught.

The checks themselves run in .ci/run: `lint-imports` (the import contracts in pyproject.toml) and ruff's C901
(no function above cyclomatic complexity 15). A check that cannot fail proves nothing, so this copies the
algorithm packages into a temporary folder, plants one violation at a time and requires the check to flag it:
  - core/ importing engine/ (an import running up the layers);
  - strategies/ importing recovery/ (two packages of the same layer that must stay independent);
  - persistence/ importing LEAN (only main.py may);
  - a function of complexity 16 in strategies/.

Usage: python .ci/check_structure_canary.py  (from the repo root, with the dev tools installed)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, List, Tuple

PACKAGES = ("core", "strategies", "persistence", "recovery", "engine")
TOOLS = Path(sys.executable).parent


def _copy_tree(into: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(package, into / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy("pyproject.toml", into / "pyproject.toml")


def _lint_imports(root: Path) -> int:
    run = subprocess.run(
        [str(TOOLS / "lint-imports"), "--no-cache"], cwd=root, capture_output=True, text=True, check=False
    )
    return run.returncode


def _complexity(root: Path) -> int:
    run = subprocess.run(
        [str(TOOLS / "ruff"), "check", "--select", "C901", "--quiet", "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return run.returncode


def _deep_function() -> str:
    """A function of cyclomatic complexity 16: 15 `if` branches plus the function itself."""
    lines = ["", "", "def planted_deep(x: int) -> int:"]
    lines += [f"    if x == {n}:\n        return {n}" for n in range(15)]
    lines.append("    return -1\n")
    return "\n".join(lines)


def _append(path: str, text: str) -> Callable[[Path], None]:
    def plant(root: Path) -> None:
        with open(root / path, "a", encoding="utf-8") as handle:
            handle.write(text)

    return plant


PLANTED: List[Tuple[str, Callable[[Path], None], Callable[[Path], int]]] = [
    ("core imports engine", _append("core/records.py", "\nimport engine.engine  # noqa\n"), _lint_imports),
    ("strategies import recovery", _append("strategies/base.py", "\nimport recovery.startup  # noqa\n"), _lint_imports),
    ("persistence imports LEAN", _append("persistence/keys.py", "\nimport AlgorithmImports  # noqa\n"), _lint_imports),
    ("complexity 16", _append("strategies/base.py", _deep_function()), _complexity),
]


def main() -> int:
    failures = []
    with tempfile.TemporaryDirectory() as clean_dir:
        clean = Path(clean_dir)
        _copy_tree(clean)
        if _lint_imports(clean) != 0 or _complexity(clean) != 0:
            print("structure canary FAILED: the unchanged tree does not pass the checks")
            return 1
    for name, plant, check in PLANTED:
        with tempfile.TemporaryDirectory() as work_dir:
            root = Path(work_dir)
            _copy_tree(root)
            plant(root)
            if check(root) == 0:
                failures.append(name)
    if failures:
        print(f"structure canary FAILED: these planted violations were not flagged: {failures}")
        return 1
    print(f"structure canary ok: all {len(PLANTED)} planted violations were flagged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
