"""The offline demo (tests/demo.py): its story is plain language, its crash has something in flight, and it
refuses what it cannot honestly run (bad --weeks, a --storage folder that already holds a store)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tests import demo
from tests.demo_story import contract_words


def run_demo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = demo.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("weeks", ["0", "-1", "two", "27"])
def test_bad_weeks_are_refused_with_a_reason(capsys: pytest.CaptureFixture[str], weeks: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        demo.main(["--weeks", weeks])
    assert stopped.value.code == 2
    assert "--weeks" in capsys.readouterr().err


def test_a_storage_folder_holding_files_is_refused_and_left_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    earlier = tmp_path / "store" / "crashsafe" / "manifest-a.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("{}", encoding="utf-8")
    code, out, err = run_demo(capsys, "--weeks", "1", "--storage", str(tmp_path / "store"))
    assert code == 1
    assert "refused" in err and "already holds 1 file" in err
    assert out == ""
    assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file()] == ["manifest-a.json"]


def test_a_new_storage_folder_is_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run_demo(capsys, "--weeks", "2", "--seed", "3", "--storage", str(tmp_path / "new"))
    assert code == 0
    assert any((tmp_path / "new").rglob("manifest-*.json"))


def test_default_story_says_what_crashed_and_what_was_recovered_in_plain_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_demo(capsys, "--verbose")
    assert code == 0
    story, _, details = out.partition("DETAILS (--verbose)")
    assert details, "--verbose adds the details after the story"
    assert "crash points counted in the dry run" in details
    for section in (
        "What was running",
        "Where it crashed",
        "What the store held",
        "What the broker did",
        "What recovery decided",
        "What is estimated",
        "How it ended",
    ):
        assert section in story
    assert "no orphan, no untracked contract, no naked leg" in story
    # no internal jargon in the story: run ids, +0/-20 fill ratios, raw contract keys, planner verbs
    assert not re.search(r"\bL-\d\b|[+-]\d+/[+-]\d+|SPY-\d{8}-[PC]-|rebind \[|resolve \[", story), story


@pytest.mark.parametrize("seed", [11, 14])
def test_crash_has_something_in_flight(capsys: pytest.CaptureFixture[str], seed: int) -> None:
    code, out, _ = run_demo(capsys, "--seed", str(seed))
    assert code == 0
    assert "nothing to book" not in out, out
    assert "order group" in out.split("3. What the store held")[1].split("4. ")[0]


def test_a_point_with_nothing_in_flight_is_named_and_another_is_picked() -> None:
    args = argparse.Namespace(weeks=1, seed=1, storage=None, any=True)
    points = demo._deployment(1, 1, None, ()).run().crash_plan.points
    quiet = points[0]  # the very first save at start-up: nothing has been ordered yet
    busy = next(p for p in points if p.kind == "order-submit" and p.detail.startswith("after"))
    deployment, notes = demo.run_with_crash(args, [quiet, busy])
    assert len(notes) == 1 and f"crash point {quiet.number}" in notes[0] and "nothing in flight" in notes[0]
    assert deployment.runs[0].crash == busy


def test_contract_keys_become_words() -> None:
    assert contract_words("SPY-20240105-C-473 filled") == "SPY 473 call (exp 01-05) filled"
    assert contract_words("SPX-20240119-P-4712.5") == "SPX 4712.5 put (exp 01-19)"
