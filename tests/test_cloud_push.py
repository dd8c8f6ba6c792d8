"""`.ci/cloud-push` stages only what LEAN loads (never tests/), and every file fits QC's per-file quota."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QC_FREE_FILE_QUOTA = 32 * 1024  # bytes per project file on the free tier (QuantConnect's project file size quota)


def _copy_repo(into: Path) -> None:
    for name in ("main.py", "config.json", "lean.json", "research.ipynb"):
        shutil.copy(REPO / name, into / name)
    for folder in ("core", "strategies", "persistence", "recovery", "engine", "tests"):
        shutil.copytree(REPO / folder, into / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (into / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "cloud-push", into / ".ci" / "cloud-push")


def test_dry_run_stages_the_algorithm_files_only(tmp_path: Path) -> None:
    _copy_repo(tmp_path)
    run = subprocess.run(
        ["bash", ".ci/cloud-push", "Forked"],
        cwd=tmp_path,
        env={"DRY_RUN": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    staged = [line for line in run.stdout.splitlines() if line.startswith("stage/")]
    relative = {line.removeprefix("stage/Forked/") for line in staged}
    assert {"main.py", "config.json", "research.ipynb", "engine/engine.py", "persistence/store.py"} <= relative
    assert {"recovery/reconcile.py", "strategies/__init__.py", "core/records.py", "engine/__init__.py"} <= relative
    assert not any(path.startswith("tests/") for path in relative), "tests must never be uploaded"
    assert (tmp_path / "stage" / "lean.json").is_file(), "the staged workspace needs its lean.json"
    oversized = {path: (tmp_path / "stage" / "Forked" / path).stat().st_size for path in relative}
    oversized = {path: size for path, size in oversized.items() if size > QC_FREE_FILE_QUOTA}
    assert oversized == {}, f"files over QC's 32 KB per-file quota: {oversized}"
