"""Execute research.ipynb top to bottom offline (nbclient) over a local storage folder, export its plots.

Usage: python .ci/run_notebook.py research.ipynb --storage PATH [--images DIR]
The notebook reads CRASHSAFE_STORAGE; outputs are not written back to the committed notebook. Every PNG the
notebook draws is written to DIR (default notebook-images/) as <cell number>-<n>.png, so CI's plots can be
looked at. Fails if the notebook changed any file of the storage folder (research must stay read-only), if a
cell raised, or if it drew no plot.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
from pathlib import Path
from typing import Dict

import nbformat
from nbclient import NotebookClient


def fingerprint(folder: Path) -> Dict[str, str]:
    """Relative path -> sha256 of every file under `folder`."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def export_images(notebook: nbformat.NotebookNode, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for number, cell in enumerate(notebook.cells, start=1):
        for index, output in enumerate(cell.get("outputs", []), start=1):
            data = output.get("data", {})
            if "image/png" in data:
                path = folder / f"cell{number:02d}-{index}.png"
                path.write_bytes(base64.b64decode(data["image/png"]))
                written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--storage", type=Path, required=True)
    parser.add_argument("--images", type=Path, default=Path("notebook-images"))
    args = parser.parse_args()
    os.environ["CRASHSAFE_STORAGE"] = str(args.storage.resolve())
    os.environ.setdefault("MPLBACKEND", "Agg")
    before = fingerprint(args.storage)
    notebook = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(Path.cwd())}}
    )
    client.execute()
    if fingerprint(args.storage) != before:
        print(f"research notebook FAILED: it changed files under {args.storage} (it must only read)")
        return 1
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    images = export_images(notebook, args.images)
    print(f"research notebook ok: {len(cells)} code cells executed offline, store unchanged")
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                print("  " + output["text"].rstrip().replace("\n", "\n  "))
    print(f"{len(images)} plot(s) exported: " + ", ".join(str(path) for path in images))
    return 0 if images else 1


if __name__ == "__main__":
    raise SystemExit(main())
