"""Crash-and-restart demo: `python -m tests.demo [--weeks N] [--seed N] [--storage DIR] [--verbose]`.

Runs the unchanged main.py through the offline harness (tests/harness/simulation.py, a stand-in for LEAN) as
a live deployment over a few simulated weeks. A first run counts every crash point (ObjectStore saves and
flushes, order submissions). Then the deployment runs again and the process dies at one of them, picked with
the seed among the points where an order group is on its way (an order submission or a save of an order
group's record; `--any`: among all points). If nothing turns out to be in flight there (no unfinished order
group on disk, no open order, holdings the store accounts for), the demo says so and picks another point.
A new algorithm instance then starts over the same ObjectStore disk and the same brokerage account, and the
demo tells the story in plain words: what was running, where it crashed, what the store held, what the
broker did meanwhile, what recovery decided and why, what is estimated, and how it ended. `--verbose` adds
the raw details (crash point counts, the restarted instance's log, the engine's records).

`--storage DIR` keeps the store on disk for research.ipynb; a folder that already holds files is refused
(a second run over it would start from someone else's state with a fresh broker account and tell a different
story). Exit status: 0 when the broker's holdings match the positions the engine tracks at the end, 2 on a
mismatch or a runtime error, 1 for a refused argument.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional

from persistence.loader import LoadResult
from tests import demo_story as story
from tests.crash_drill import read_store
from tests.harness.faults import CrashPlan, CrashPoint
from tests.harness.simulation import Deployment

START = date(2024, 1, 2)
MAX_WEEKS = 26
MAX_TRIES = 8  # crash points tried before giving up on finding one with something in flight


class DemoDeployment(Deployment):
    """Remembers what a restart will find: the store on disk and the broker, read the moment the process died,
    and the broker again when the new instance starts (what filled while nobody was watching)."""

    on_disk_at_crash: Optional[LoadResult] = None
    broker_at_crash: Optional[story.BrokerView] = None
    broker_at_restart: Optional[story.BrokerView] = None

    def _broker_view(self) -> story.BrokerView:
        return story.BrokerView(self.broker_holdings(), [(o.broker_id, o.tag) for o in self.open_orders()])

    def _lose_process(self) -> None:
        self.broker_at_crash = self._broker_view()
        super()._lose_process()
        self.on_disk_at_crash = read_store(self)

    def _new_instance(self, moment: Any) -> Any:
        if self.runs:
            self.broker_at_restart = self._broker_view()
        return super()._new_instance(moment)


def _deployment(weeks: int, seed: int, storage: Optional[str], crash_at: tuple[int, ...]) -> DemoDeployment:
    end = START + timedelta(weeks=weeks) - timedelta(days=1)
    plan = CrashPlan(crash_at=crash_at)
    # all three strategies: the two the template is about and the put credit spread, the strategy API's example
    parameters = {"put-credit-spread-enabled": "true"}
    return DemoDeployment(seed=seed, start=START, end=end, storage_root=storage, crash_plan=plan, parameters=parameters)


def _mid_trade(point: CrashPoint) -> bool:
    return point.kind == "order-submit" or "/records/group-" in point.detail


def _weeks(text: str) -> int:
    try:
        weeks = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of weeks") from None
    if not 1 <= weeks <= MAX_WEEKS:
        raise argparse.ArgumentTypeError(f"{weeks} weeks: choose 1 to {MAX_WEEKS} (the demo simulates whole weeks)")
    return weeks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--weeks", type=_weeks, default=3, help=f"simulated weeks, 1 to {MAX_WEEKS} (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="market path and crash point (default 1)")
    parser.add_argument("--storage", default=None, help="an empty or new ObjectStore folder (default: in memory)")
    parser.add_argument("--any", action="store_true", help="crash at any point, not only mid-trade")
    parser.add_argument("--verbose", action="store_true", help="add the raw details after the story")
    return parser


def storage_refusal(storage: Optional[str]) -> Optional[str]:
    """Why an existing --storage folder is refused (None: it is new or empty)."""
    if storage is None:
        return None
    folder = Path(storage)
    if folder.exists() and not folder.is_dir():
        return f"--storage {storage}: is a file, not a folder"
    if folder.is_dir() and any(folder.iterdir()):
        files = sum(1 for path in folder.rglob("*") if path.is_file())
        return (
            f"--storage {storage} already holds {files} file(s), probably a store from an earlier run. The demo "
            "will not run over it: the simulated broker account is not saved with it, so a restart over it "
            "would close those positions as orphans and tell a different story. Delete the folder or name a new one."
        )
    return None


def _choose(points: List[CrashPoint], seed: int, any_point: bool) -> List[CrashPoint]:
    """Crash points in the order the demo tries them: mid-trade ones first, shuffled by the seed."""
    mid_trade = [point for point in points if _mid_trade(point)]
    pool = points if any_point or not mid_trade else mid_trade
    order = list(pool)
    random.Random(seed).shuffle(order)
    return order


def run_with_crash(args: argparse.Namespace, order: List[CrashPoint]) -> tuple[DemoDeployment, List[str]]:
    """Crash at the points in `order` in turn until one has something in flight; returns the run and notes."""
    notes: List[str] = []
    candidates = order[:MAX_TRIES]
    chosen = candidates[-1]
    for point in candidates:
        deployment = _deployment(args.weeks, args.seed, None, (point.number,)).run()
        disk, broker = deployment.on_disk_at_crash, deployment.broker_at_crash
        if disk is not None and broker is not None and story.in_flight(disk, broker):
            chosen = point
            break
        notes.append(
            f"crash point {point.number} ({story.crash_words(point)}) had nothing in flight: "
            "the store and the broker agreed at that moment, so a restart would have nothing to recover"
        )
    else:
        notes.append(f"none of the {len(candidates)} points tried had anything in flight; showing the last one")
    if args.storage is not None:  # the same run again (deterministic), this time writing the folder
        deployment = _deployment(args.weeks, args.seed, args.storage, (chosen.number,)).run()
    return deployment, notes


def _print_story(deployment: DemoDeployment, args: argparse.Namespace, notes: List[str]) -> None:
    first, last = deployment.runs[0], deployment.runs[-1]
    print(
        f"WHAT THIS IS: the unchanged main.py running live in an offline simulation (not LEAN) for {args.weeks} "
        f"week(s) from {START:%a %Y-%m-%d}, 250,000 USD, three strategies: LT112, Friday 0DTE and the monthly put "
        "credit spread on SPY options.\n"
        "The process is killed once, mid-trade, and restarted 10 minutes later over the same store and broker. "
        "Times are New York time."
    )
    for note in notes:
        print(f"  (seed {args.seed}: {note}; picking another)")
    _section("1. What was running when it crashed")
    disk = deployment.on_disk_at_crash
    if disk is None or first.crash is None:
        print("  the run never crashed (the crash point was not reached)")
        return
    for line in story.running_lines(disk):
        print(f"  {line}")
    _section("2. Where it crashed")
    print(f"  {first.ended_at:%a %Y-%m-%d %H:%M}: {story.crash_words(first.crash)}")
    _section("3. What the store held (exactly what the restart loads)")
    for line in story.store_lines(disk) or ["nothing in flight, no risk record"]:
        print(f"  {line}")
    _section("4. What the broker did meanwhile (the broker keeps working while the algorithm is down)")
    at_crash = deployment.broker_at_crash or story.BrokerView()
    for line in story.broker_lines(disk, at_crash, _restart_broker(deployment)):
        print(f"  {line}")
    _section(f"5. What recovery decided after the restart at {last.started_at:%a %m-%d %H:%M}, and why")
    print("  Rule: the broker's holdings and open orders are the truth; the store says what was intended.")
    final = read_store(deployment)
    entries = story.recovery_entries(final.audit.entries if final.audit else (), last.started_at)
    logs = deployment.algorithm.logs if deployment.algorithm is not None else []
    for line in story.recovery_lines(
        entries, [entry for entry in logs if entry[0] >= last.started_at], last.started_at
    ):
        print(f"  {line}")
    _section("6. What is estimated")
    for line in story.estimated_lines(entries):
        print(f"  {line}")


def _restart_broker(deployment: DemoDeployment) -> story.BrokerView:
    return deployment.broker_at_restart or deployment.broker_at_crash or story.BrokerView()


def _section(title: str) -> None:
    print(f"\n{title}")


def _print_ending(deployment: DemoDeployment) -> bool:
    _section("7. How it ended")
    broker = deployment.broker_holdings()
    tracked: Dict[str, int] = {}
    engine = deployment.engine
    if engine is not None:
        snapshot = engine.snapshot()
        tracked = story.open_contracts(snapshot.positions.values())
        stored = read_store(deployment)
        every_position = [*stored.archived_positions.values(), *stored.positions.values()]
        for strategy_id, record in sorted(snapshot.strategies.items()):
            closed = [p for p in every_position if p.strategy_id == strategy_id and p.realized_pnl is not None]
            pnl = sum(p.realized_pnl or 0.0 for p in closed)
            name = story.strategy_name(strategy_id)
            print(f"  {name}: {record.state.value}; {len(closed)} trade(s) closed over both runs, realized {pnl:+,.0f}")
    ok = broker == tracked and deployment.runtime_error is None
    if deployment.runtime_error is not None:
        print(f"  RUNTIME ERROR (the algorithm stopped): {deployment.runtime_error}")
    if broker == tracked:
        held = ", ".join(f"{q:+d} {story.contract_words(s)}" for s, q in sorted(broker.items())) or "nothing"
        print(f"  broker holds {held}; the engine tracks exactly that: no orphan, no untracked contract, no naked leg")
    else:
        print(f"  MISMATCH: broker holds {broker}, the engine tracks {tracked}")
    print(f"  cash {deployment.brokerage.cash:,.2f}; the store holds {len(deployment.store.disk.keys())} keys")
    return ok


def _print_details(deployment: DemoDeployment, points: List[CrashPoint]) -> None:
    _section("DETAILS (--verbose)")
    print(f"crash points counted in the dry run: {len(points)} {dict(Counter(point.kind for point in points))}")
    for run in deployment.runs:
        ending = (
            f"crashed at point {run.crash.number} ({run.crash.kind} {run.crash.detail})"
            if run.crash
            else "ran to the end"
        )
        print(f"run {run.algorithm_id}: started {run.started_at:%a %Y-%m-%d %H:%M}, {ending} at {run.ended_at}")
        if run.loaded_open_orders:
            print(f"  open orders reloaded with new LEAN ids (id, broker id): {run.loaded_open_orders}")
    algorithm = deployment.algorithm
    if algorithm is not None and len(deployment.runs) > 1:
        restart = deployment.runs[-1].started_at
        print("restarted instance's log, first hour (level: log = info, error = something is wrong):")
        for moment, level, message in algorithm.logs:
            if moment > restart + timedelta(hours=1):
                break
            if moment >= restart:
                print(f"  {moment:%m-%d %H:%M} {level:5} {message}")
    if deployment.engine is not None:
        snapshot = deployment.engine.snapshot()
        for group in sorted(snapshot.groups.values(), key=lambda g: g.created_at):
            print(f"  group {group.group_id}: {group.purpose.value} {group.status.value} decision={group.decision!r}")
        for position in snapshot.positions.values():
            print(
                f"  position {position.position_id}: {position.status.value} "
                f"realized {position.realized_pnl} {position.note}"
            )
    print("open broker orders:", [(o.broker_id, o.tag) for o in deployment.open_orders()])


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    refusal = storage_refusal(args.storage)
    if refusal is not None:
        print(f"refused: {refusal}", file=sys.stderr)
        return 1
    counting = _deployment(args.weeks, args.seed, None, ()).run()
    points = counting.crash_plan.points
    if not points:
        print("nothing to crash at: the dry run placed no order and saved nothing")
        return 1
    deployment, notes = run_with_crash(args, _choose(points, args.seed, args.any))
    _print_story(deployment, args, notes)
    ok = _print_ending(deployment)
    if args.verbose:
        _print_details(deployment, points)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
