"""Run mypy on .ci/stub_canary.py and fail unless every `# expect:` line is reported with that text.

Usage: python .ci/check_stub_canary.py  (from the repo root, with mypy and quantconnect-stubs installed)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CANARY = Path(".ci/stub_canary.py")


def main() -> int:
    expected: dict[int, str] = {}
    for number, line in enumerate(CANARY.read_text(encoding="utf-8").splitlines(), start=1):
        match = re.search(r"# expect: (.+)$", line)
        if match:
            expected[number] = match.group(1).strip()
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(CANARY)],
        capture_output=True,
        text=True,
        check=False,
    )
    errors: dict[int, list[str]] = {}
    for line in run.stdout.splitlines():
        match = re.match(rf"{re.escape(str(CANARY))}:(\d+): error: (.+)$", line)
        if match:
            errors.setdefault(int(match.group(1)), []).append(match.group(2))
    missing = [
        f"line {number}: expected {text!r}, got {errors.get(number, [])}"
        for number, text in expected.items()
        if not any(text in message for message in errors.get(number, []))
    ]
    if run.returncode == 0 or missing or not expected:
        print("stub canary FAILED: the type check did not flag the deliberate LEAN API mistakes")
        print("\n".join(missing))
        print(run.stdout)
        return 1
    print(f"stub canary ok: mypy flagged all {len(expected)} deliberate LEAN API mistakes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
