"""Execute research.ipynb top to bottom offline (nbclient), over a local storage folder.

Usage: python .ci/run_notebook.py research.ipynb --storage PATH
The notebook reads CRASHSAFE_STORAGE; outputs are not written back to the committed notebook.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--storage", type=Path, required=True)
    args = parser.parse_args()
    os.environ["CRASHSAFE_STORAGE"] = str(args.storage.resolve())
    os.environ.setdefault("MPLBACKEND", "Agg")
    notebook = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(Path.cwd())}}
    )
    client.execute()
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    print(f"research notebook ok: {len(cells)} code cells executed offline")
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                print("  " + output["text"].rstrip().replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
