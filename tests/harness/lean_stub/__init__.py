"""Offline stand-in for LEAN's Python API (only what main.py uses).

`AlgorithmImports.py` in this folder is what `from AlgorithmImports import *` finds once the harness puts this
folder on sys.path (tests/harness/loader.py does; pyproject's mypy config never does, so the real
quantconnect-stubs stay in charge of type checking). The other modules are imported by their package names
(`tests.harness.lean_stub.x`) so that each class exists once.
"""
