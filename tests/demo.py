"""Crash-and-restart demo: `python -m tests.demo [--weeks N] [--seed N] [--storage DIR]`.

Runs the unchanged main.py through the offline harness (tests/harness/simulation.py) over a few simulated
weeks, first once without crashing to count every crash point (ObjectStore saves and flushes, order
submissions), then again crashing at one of them picked with the seed — among the points where an order group is in
flight (an order submission, or a save of a group record), so the restart has something to recover; `--any`
picks among all points. The deployment restarts a new algorithm
instance over the same ObjectStore disk and the same brokerage account, and the demo prints what the restarted
instance recovered: its start-up log (loaded records, decisions, reconcile actions), the engine's state, and
the broker's holdings against the positions the engine tracks.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from datetime import date, timedelta
from typing import Dict, List, Optional

from persistence.loader import LoadResult
from tests.crash_drill import read_store
from tests.harness.faults import CrashPlan, CrashPoint
from tests.harness.simulation import Deployment

START = date(2024, 1, 2)


class DemoDeployment(Deployment):
    """Remembers what a restart will find on disk, read the moment the crashed process is gone."""

    on_disk_at_crash: Optional[LoadResult] = None

    def _lose_process(self) -> None:
        super()._lose_process()
        self.on_disk_at_crash = read_store(self)


def _deployment(weeks: int, seed: int, storage: Optional[str], crash_at: tuple[int, ...]) -> DemoDeployment:
    end = START + timedelta(weeks=weeks) - timedelta(days=1)
    plan = CrashPlan(crash_at=crash_at)
    return DemoDeployment(seed=seed, start=START, end=end, storage_root=storage, crash_plan=plan)


def _mid_trade(point: CrashPoint) -> bool:
    return point.kind == "order-submit" or "/records/group-" in point.detail


def _print_disk(state: LoadResult) -> None:
    print("\nwhat the store held when the process died (a restart loads exactly this):")
    for strategy_id, record in sorted(state.strategies.items()):
        print(f"  strategy {strategy_id}: {record.state.value} since {record.changed_at:%m-%d %H:%M} ({record.reason})")
    for group in state.groups.values():
        fills = ", ".join(f"{leg.symbol} {leg.filled_quantity:+d}/{leg.quantity:+d}" for leg in group.legs)
        print(f"  group {group.group_id}: {group.purpose.value} {group.status.value} [{fills}]")
    for position in state.positions.values():
        print(f"  position {position.position_id}: {position.status.value}")
    if state.risk is not None:
        risk = state.risk
        print(f"  risk: peak {risk.peak_equity:,.0f}, drawdown {risk.drawdown:.2%}, breaker {risk.breaker.value}")
    if state.lost or state.stale or state.quarantined:
        print(f"  lost {state.lost}, stale {state.stale}, quarantined {[q.key for q in state.quarantined]}")


def _tracked(deployment: Deployment) -> Dict[str, int]:
    engine = deployment.engine
    held: Dict[str, int] = {}
    if engine is None:
        return held
    for position in engine.snapshot().open_positions():
        for contract in position.contracts:
            held[contract.symbol] = held.get(contract.symbol, 0) + contract.quantity
    return held


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--storage", default=None, help="ObjectStore folder (default: in memory)")
    parser.add_argument("--any", action="store_true", help="crash at any point, not only mid-trade")
    args = parser.parse_args(argv)

    counting = _deployment(args.weeks, args.seed, None, ()).run()
    points = counting.crash_plan.points
    print(f"dry run: {len(points)} crash points {dict(Counter(point.kind for point in points))}")
    if not points:
        print("nothing to crash at")
        return 1
    candidates = points if args.any else [point for point in points if _mid_trade(point)] or points
    chosen = random.Random(args.seed).choice(candidates)
    print(f"crashing at point {chosen.number}: {chosen.kind} {chosen.detail}")

    deployment = _deployment(args.weeks, args.seed, args.storage, (chosen.number,)).run()
    for run in deployment.runs:
        ending = f"crashed ({run.crash.kind} {run.crash.detail})" if run.crash else "ran to the end"
        print(f"{run.algorithm_id}: started {run.started_at:%a %Y-%m-%d %H:%M}, {ending} at {run.ended_at}")
        if run.loaded_open_orders:
            print(f"  open orders loaded with new LEAN ids: {run.loaded_open_orders}")
    if deployment.runtime_error is not None:
        print(f"RUNTIME ERROR: {deployment.runtime_error}")
    if deployment.on_disk_at_crash is not None:
        _print_disk(deployment.on_disk_at_crash)
    algorithm = deployment.algorithm
    if algorithm is not None and len(deployment.runs) > 1:
        restart = deployment.runs[-1].started_at
        print("\nrestarted instance, start-up log:")
        for moment, level, message in algorithm.logs:
            if moment > restart + timedelta(hours=1):
                break
            # the first minute in full; after it, what recovery still books (closes priced at the first quote)
            recovering = any(word in message for word in ("RECOVERY", "position", "reconcile", "price"))
            if moment <= restart + timedelta(minutes=1) or recovering:
                print(f"  {moment:%m-%d %H:%M} {level:5} {message}")
    if deployment.engine is not None:
        snapshot = deployment.engine.snapshot()
        print(
            "\nstrategies at the end:", {sid: record.state.value for sid, record in sorted(snapshot.strategies.items())}
        )
        print("groups:", len(snapshot.groups), "positions:", len(snapshot.positions))
    broker = deployment.broker_holdings()
    tracked = _tracked(deployment)
    print("\nbroker holdings:  ", dict(sorted(broker.items())) or "{}")
    print("engine positions: ", dict(sorted(tracked.items())) or "{}")
    print("open broker orders:", [(o.broker_id, o.tag) for o in deployment.open_orders()])
    print("holdings match positions" if broker == tracked else "MISMATCH between holdings and positions")
    print(f"store keys on disk: {len(deployment.store.disk.keys())}, cash {deployment.brokerage.cash:,.2f}")
    return 0 if broker == tracked and deployment.runtime_error is None else 2


if __name__ == "__main__":
    sys.exit(main())
