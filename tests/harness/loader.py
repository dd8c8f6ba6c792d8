"""Loads main.py the way LEAN does (PythonInitializer.AddAlgorithmLocationPath, AlgorithmPythonWrapper), with the
offline AlgorithmImports on sys.path.

LEAN puts the algorithm's folder at the front of sys.path, imports the module by file stem, and instantiates
every attribute whose repr starts with "<class 'main." and that is a QCAlgorithm subclass, walking dir(module)
alphabetically: the last one wins. This loader finds the same class (and refuses none).
Differs from LEAN: the module is imported once per Python process and reused by every restart of a
deployment (a real restart is a new process); main.py keeps no module-level mutable state, so this only saves
time.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Optional

from tests.harness.lean_stub.algorithm import QCAlgorithm

REPO_ROOT = Path(__file__).resolve().parents[2]
STUB_DIR = Path(__file__).resolve().parent / "lean_stub"


def install_stub() -> None:
    """Put the offline AlgorithmImports (and the repo root, LEAN's algorithm folder) on sys.path."""
    for path in (str(REPO_ROOT), str(STUB_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)


def algorithm_class(module: ModuleType) -> type:
    found: Optional[type] = None
    prefix = f"<class '{module.__name__}."
    for name in sorted(dir(module)):
        value = getattr(module, name)
        if repr(value).startswith(prefix) and isinstance(value, type) and issubclass(value, QCAlgorithm):
            found = value
    if found is None:
        raise RuntimeError("Please ensure that one class inherits from QCAlgorithm.")
    return found


def load_main(module_name: str = "main") -> type:
    install_stub()
    return algorithm_class(importlib.import_module(module_name))
