"""Crash drill: crash the scripted scenario at every crash point in turn, restart, check the invariants.

    python -m tests.crash_drill            # every crash point of a 6-week scenario (two LT112 cycles)
    python -m tests.crash_drill --short    # 2 weeks, an evenly spread sample of points (what CI runs)
    python -m tests.crash_drill --short --scenario assignment

The scenario (`scenario()`): both strategies on SPY, several weeks of the synthetic market, a broker that
fills some legs partially, one leg late, cancels one and refuses one (the harness's FaultPlan), and breaker
thresholds low enough that a circuit breaker trips. A first run only counts the crash points: every
ObjectStore write ("store-save"), every key a flush writes ("store-flush": a crash there loses the keys after
it), and every order submission ("order-submit": just before the broker receives a batch and just after it
accepted it). Then, for each chosen point, a fresh deployment of the same scenario crashes exactly there,
loses everything not yet flushed, stays down while the broker keeps filling, restarts from the store and runs
to the end.

A second scenario (`refused-long`, `--scenario`): LT112's entry loses its long put (the broker cancels it) while
the shorts fill, the broker then refuses every buy of an entry's long put on a recovery order (the completion
child), and every restart keeps the algorithm id of the first start (a same-id live restart). Recovery must roll
the entry back (shorts bought back first) and re-bind whatever was working at each restart.

A third scenario (`assignment`): both strategies over the two weeks from 2024-11-18, which hold Black Friday
(2024-11-29: the exchange closes at 13:00, the 0DTE must be out before) and, on Friday 2024-11-22 at 11:00, a fall
of 8 % that leaves the 0DTE condor's short put deep in the money on its expiry day: the broker assigns it early
(the harness follows BacktestingBrokerage's assignment model), 100 shares per contract are delivered at the
strike, and the engine must book the assignment, sell the shares and close what is left, whatever the crash.
The shares count like any holding in no-untracked/no-orphan.

A fourth scenario (`three-strategies`): the base market with the monthly put credit spread switched on beside
LT112 and the 0DTE (strategies/put_credit_spread.py, the worked example of the strategy API), a broker that
fills a leg of the first entry in parts, cancels a leg of the second and fills one late.

Invariants checked on every run (a failure is a violation; the drill exits 1 on any):
- no-orphan: no open position record claims a contract the broker does not hold, and recovery never had to
  close an orphaned position ("orphan-cleaned" audit) — every exit was written ahead, so none should exist;
- no-untracked: every contract the broker holds is claimed by an open position or an in-flight order group,
  and recovery never had to adopt a holding ("adopted" audit) — every entry was written ahead;
- no-duplicate-entry: per strategy and trading day at most one ENTRY order group has fills at the broker,
  and no strategy has two open positions;
- no-naked-leg: every open position holds whole units of the structure it was entered with (no leg missing,
  none short of the others), and no incomplete group from an earlier day is left undecided;
- facts-kept: every record durable on disk at a crash is still there at the end (live or archived), and no
  record's durable version ever goes back to an older sequence number after a restart (so risk limits and
  breakers are never reset by a crash);
- ran-clean: the deployment ended without a runtime error (an exception escaping a LEAN handler);
- hostile-kept: the corrupt and impossible values planted in the store before the first start (`PLANTED`:
  a manifest slot nested 100,000 deep, a risk slot that is not UTF-8, an exit group of 1,000,000 pending
  contracts, a position of 0 contracts, a group that is not JSON, a foreign key) are still there byte for
  byte at the end: quarantine reads around them and never overwrites them, while every other invariant
  (no order sized from them, saving and trading go on) holds as usual.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from core.ports import ListLog
from core.records import (
    ContractRecord,
    GroupPurpose,
    GroupStatus,
    LegRecord,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    Right,
)
from persistence.codec import canonical_json, to_body
from persistence.envelope import seal
from persistence.keys import Namespace
from persistence.loader import LoadResult
from persistence.local_folder import ReadOnlyObjectStore
from persistence.schemas import CURRENT_VERSION
from persistence.store import StateStore
from recovery.reconcile import claims
from tests.harness.brokerage import REJECTED, BrokerOrder, BrokerUpdate, SimulatedBrokerage
from tests.harness.faults import CRASH_KINDS, CrashPlan, FaultPlan, LegFault
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.market import SyntheticMarket
from tests.harness.simulation import Deployment

INVARIANTS = (
    "no-orphan",
    "no-untracked",
    "no-duplicate-entry",
    "no-naked-leg",
    "facts-kept",
    "ran-clean",
    "hostile-kept",
)
START = date(2024, 1, 2)
# the assignment scenario: two weeks that hold Black Friday (2024-11-29, the exchange closes at 13:00) and, on the
# Friday before, a fall of 8 % at 11:00 that puts the 0DTE condor's short put deep in the money on its expiry day
ASSIGNMENT_START = date(2024, 11, 18)
ASSIGNMENT_SHOCK = (datetime(2024, 11, 22, 11, 0), 0.92)
SEED = 11
PROJECT_ID = 424242


@dataclass(frozen=True)
class Scenario:
    weeks: int
    seed: int
    name: str = "base"  # "base", "refused-long", "assignment" or "three-strategies" (see the module docstring)

    @property
    def refused_long(self) -> bool:
        return self.name == "refused-long"

    @property
    def start(self) -> date:
        return ASSIGNMENT_START if self.name == "assignment" else START

    @property
    def end(self) -> date:
        return self.start + timedelta(weeks=self.weeks) - timedelta(days=1)

    def market(self) -> Optional[SyntheticMarket]:
        if self.name != "assignment":
            return None
        at, factor = ASSIGNMENT_SHOCK
        return shocked_market(self.seed, self.start, self.end, at, factor)

    def parameters(self) -> Dict[str, str]:
        return {
            "underlying": "SPY",
            "lt112-enabled": "true",
            "zero-dte-enabled": "true",
            "put-credit-spread-enabled": "true" if self.name == "three-strategies" else "false",
            # base and refused-long are about half-filled entries: market entries, whose legs fill one by one
            # (tests/harness/simulation.py MARKET_ENTRIES); the other two use the default walked combo limits
            "entry-orders": "market" if self.name in ("base", "refused-long") else "limit",
            # a low first threshold so the HALVE breaker trips (and must survive restarts) while trading goes on
            "risk-halve-drawdown": "0.003",
            "risk-no-new-drawdown": "0.05",
            "risk-close-all-drawdown": "0.5",
            "risk-relax-drawdown": "0.001",
        }

    def faults(self) -> FaultPlan:
        # (broker submission number, leg number) -> what the broker does instead of filling it whole
        if self.refused_long:
            return FaultPlan(rules={(1, 1): LegFault("cancel")})  # LT112 entry: the long put is cancelled
        if self.name == "assignment":
            return FaultPlan()
        if self.name == "three-strategies":
            return FaultPlan(
                rules={
                    (1, 2): LegFault("partial", fraction=0.5, delay_steps=3),  # the first entry: a leg in parts
                    (2, 1): LegFault("cancel"),  # the second entry: its first leg cancelled by the broker
                    (4, 2): LegFault("late", delay_steps=2),
                },
            )
        return FaultPlan(
            rules={
                (1, 3): LegFault("partial", fraction=0.5, delay_steps=3),  # LT112 entry: naked puts fill in parts
                (2, 2): LegFault("cancel"),  # first 0DTE entry: one leg cancelled by the broker
                (3, 1): LegFault("late", delay_steps=2),
                (5, 2): LegFault("partial", fraction=0.5, delay_steps=2),
                (7, 1): LegFault("reject"),
            },
        )

    def deployment(self, crash_plan: CrashPlan) -> DrillDeployment:
        return DrillDeployment(
            seed=self.seed,
            start=self.start,
            end=self.end,
            market=self.market(),
            parameters=self.parameters(),
            faults=self.faults(),
            crash_plan=crash_plan,
            project_id=PROJECT_ID,
            refused_long=self.refused_long,
        )


REFUSAL = "Order rejected by the brokerage: buying this contract is not permitted"


class RefusesProtectiveLongs(SimulatedBrokerage):
    """The `refused-long` scenario's broker: every buy of a contract some entry bought (the long put of a
    structure) is refused at placement on a recovery order (a group id with "-rec"), with a reason, as LEAN
    reports a brokerage refusal (an Invalid order event carrying the message). Entries and exits are not
    refused, and neither is buying back a short."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entry_longs: Set[str] = set()
        self.refused: List[str] = []  # broker ids of the refused orders

    def place(
        self, legs: Sequence[Tuple[Symbol, int]], tag: str, now: datetime, ready_index: int, combo: bool
    ) -> Tuple[List[BrokerOrder], List[BrokerUpdate]]:
        orders, updates = super().place(legs, tag, now, ready_index, combo)
        if tag.endswith("-entry"):
            self.entry_longs |= {str(order.symbol) for order in orders if order.quantity > 0}
        elif "-rec" in tag:
            for order in orders:
                if order.quantity > 0 and str(order.symbol) in self.entry_longs and order.status != REJECTED:
                    order.status = REJECTED
                    self.refused.append(order.broker_id)
                    updates.append(BrokerUpdate(order.broker_id, "reject", 0, 0.0, now, REFUSAL))
        return orders, updates


def _planted_exit_group() -> str:
    leg = LegRecord("SPY-20240517-P-400", "SPY", Right.PUT, 400.0, date(2024, 5, 17), 1_000_000)
    group = OrderGroupRecord(
        "planted", "lt112", GroupPurpose.EXIT, "planted", (leg,), GroupStatus.INCOMPLETE,
        datetime(2024, 1, 2, 10), datetime(2024, 1, 2, 10), "L-0",
    )  # fmt: skip
    return seal("order_group", CURRENT_VERSION["order_group"], 1, "2024-01-02T15:00:00", canonical_json(to_body(group)))


def _planted_position() -> str:
    contract = ContractRecord("SPY-20240517-P-400", Right.PUT, 400.0, date(2024, 5, 17), 0)
    position = PositionRecord(
        "planted", "lt112", "planted", datetime(2024, 1, 2, 10), -1.0, (contract,), date(2024, 5, 17), (400.0,),
        None, 10.0, 20.0, "",
    )  # fmt: skip
    return seal("position", CURRENT_VERSION["position"], 1, "2024-01-02T15:00:00", canonical_json(to_body(position)))


def planted() -> Dict[str, bytes]:
    """Hostile values every drill deployment starts with (see hostile-kept in the module docstring)."""
    ns = namespace()
    return {
        ns.manifest_key("b"): ("[" * 100_000 + "]" * 100_000).encode(),
        ns.record_key("risk", "b"): b"\xff\xfe not text \x80",
        ns.record_key("group-planted", "a"): _planted_exit_group().encode(),
        ns.record_key("position-planted", "a"): _planted_position().encode(),
        ns.record_key("group-junk", "b"): b'{"body": {"trunc',
        ns.key("notes/from research.txt"): b"someone else's notes",
    }


class DrillDeployment(Deployment):
    """A Deployment that remembers what was durable on disk at each crash (for facts-kept). `refused_long`: the
    broker refuses protective longs on recovery orders and every restart keeps the first algorithm id."""

    def __init__(self, *args: Any, refused_long: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.durable_at_crashes: List[Dict[str, int]] = []
        self.same_id = refused_long
        if refused_long:
            self.brokerage = RefusesProtectiveLongs(self.market, self.brokerage.cash, self.brokerage.faults)
        self.planted = planted()
        hooks, self.store.hooks = self.store.hooks, []  # planting is not one of the scenario's crash points
        for key, value in self.planted.items():
            self.store.save_bytes(key, value)
        self.store.flush()
        self.store.hooks = hooks

    def _algorithm_id(self) -> str:
        return "L-1" if self.same_id else super()._algorithm_id()

    def _lose_process(self) -> None:
        super()._lose_process()
        # self.store is now the store a restart sees: only what had reached disk
        self.durable_at_crashes.append(dict(read_store(self).seqs))


def shocked_market(seed: int, start: date, end: date, at: datetime, factor: float) -> SyntheticMarket:
    """The synthetic market with every price from `at` on multiplied by `factor` (a crash or a squeeze)."""
    market = SyntheticMarket(seed, start, end)
    for index, step in enumerate(market.steps):
        if step.time >= at:
            session_open = step.session_open if step.time.date() == at.date() else step.session_open * factor
            market.steps[index] = replace(
                step,
                price=round(step.price * factor, 2),
                open=round(step.open * factor, 2),
                session_open=round(session_open, 2),
            )
    return market


def namespace() -> Namespace:
    return Namespace.for_run(project_id=str(PROJECT_ID), live_mode=True, run_id="", resume_run="")


def read_store(deployment: Deployment) -> LoadResult:
    """Load the deployment's store the way a restart would, without writing anything to it."""
    port = ReadOnlyObjectStore(deployment.store)
    store = StateStore(port, namespace(), lambda: datetime(2000, 1, 1), ListLog())
    return store.load_all()


# ----------------------------------------------------------------------------------------------- invariants


@dataclass
class RunOutcome:
    kind: str
    number: int
    crashed: bool
    restarts: int
    violations: List[Tuple[str, str]] = field(default_factory=list)


def _audit_kinds(result: LoadResult) -> Counter[str]:
    return Counter(entry.kind for entry in (result.audit.entries if result.audit else ()))


def _entry_structure(groups: Mapping[str, OrderGroupRecord], position: PositionRecord) -> Dict[str, int]:
    entry = groups.get(position.entry_group_id)
    return {leg.symbol: leg.quantity for leg in entry.legs} if entry is not None else {}


def _whole_units(contracts: Mapping[str, int], design: Mapping[str, int]) -> bool:
    """contracts == k * design for one whole k >= 1, leg by leg (design: per-leg quantities of the entry)."""
    if set(contracts) != set(design):
        return False
    unit = 0
    for leg in design.values():
        unit = leg if unit == 0 else _gcd(unit, leg)
    ratios = {contracts[symbol] * abs(unit) / design[symbol] for symbol in design}
    return len(ratios) == 1 and next(iter(ratios)) >= 1 and float(next(iter(ratios))).is_integer()


def _gcd(a: int, b: int) -> int:
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a


def check(deployment: DrillDeployment) -> List[Tuple[str, str]]:
    violations: List[Tuple[str, str]] = []
    if deployment.runtime_error is not None:
        violations.append(("ran-clean", str(deployment.runtime_error)))
    deployment.flush_store()
    final = read_store(deployment)
    engine = deployment.engine
    if engine is not None:
        snapshot = engine.snapshot()
        positions, groups = dict(snapshot.positions), dict(snapshot.groups)
    else:  # crashed too close to the end to restart: judge what a restart would load
        positions, groups = dict(final.positions), dict(final.groups)
    holdings = {symbol: quantity for symbol, quantity in deployment.broker_holdings().items() if quantity}
    claimed = {symbol: quantity for symbol, quantity in claims(positions, groups).items() if quantity}
    for symbol in sorted(set(holdings) | set(claimed)):
        held, claim = holdings.get(symbol, 0), claimed.get(symbol, 0)
        if held == claim:
            continue
        if (claim and abs(held) < abs(claim)) or (held and claim and (held > 0) != (claim > 0)):
            violations.append(("no-orphan", f"{symbol}: records claim {claim:+d}, broker holds {held:+d}"))
        else:
            violations.append(("no-untracked", f"{symbol}: broker holds {held:+d}, records claim {claim:+d}"))
    audit_kinds = _audit_kinds(final)
    if audit_kinds["orphan-cleaned"]:
        violations.append(("no-orphan", f"recovery closed {audit_kinds['orphan-cleaned']} orphaned position(s)"))
    if audit_kinds["adopted"]:
        violations.append(("no-untracked", f"recovery adopted {audit_kinds['adopted']} untracked holding(s)"))

    violations += _duplicate_entries(deployment, positions)
    violations += _naked_legs(deployment, positions, {**final.archived_groups, **groups})
    violations += _facts_kept(deployment, final)
    for key, value in sorted(deployment.planted.items()):
        if not deployment.store.contains_key(key) or deployment.store.read_bytes(key) != value:
            violations.append(("hostile-kept", f"the planted value at {key} was changed or removed"))
    return violations


def _duplicate_entries(deployment: Deployment, positions: Mapping[str, PositionRecord]) -> List[Tuple[str, str]]:
    out = []
    entries_with_fills: Dict[Tuple[str, date], Set[str]] = {}
    for order in deployment.brokerage.orders.values():
        if order.filled and order.tag.endswith("-entry"):
            strategy = order.tag.split("-", 1)[0]
            entries_with_fills.setdefault((strategy, order.submitted_at.date()), set()).add(order.tag)
    for (strategy, day), tags in sorted(entries_with_fills.items()):
        if len(tags) > 1:
            out.append(("no-duplicate-entry", f"{strategy} entered {len(tags)} times on {day}: {sorted(tags)}"))
    open_by_strategy = Counter(p.strategy_id for p in positions.values() if p.status is not PositionStatus.CLOSED)
    for strategy, count in sorted(open_by_strategy.items()):
        if count > 1:
            out.append(("no-duplicate-entry", f"{strategy} has {count} open positions"))
    return out


def _naked_legs(
    deployment: Deployment, positions: Mapping[str, PositionRecord], groups: Mapping[str, OrderGroupRecord]
) -> List[Tuple[str, str]]:
    out = []
    for position in positions.values():
        if position.status is PositionStatus.CLOSED or position.strategy_id == "recovery":
            continue
        held = {contract.symbol: contract.quantity for contract in position.contracts}
        design = _entry_structure(groups, position)
        if design and not _whole_units(held, design):
            out.append(("no-naked-leg", f"position {position.position_id} holds {held}, designed {design}"))
    last_day = deployment.end
    for group in groups.values():
        if group.status is GroupStatus.INCOMPLETE and group.created_at.date() < last_day and not group.decision:
            out.append(("no-naked-leg", f"group {group.group_id} ({group.purpose.value}) left INCOMPLETE, undecided"))
        if (
            group.status is GroupStatus.INCOMPLETE
            and group.purpose in (GroupPurpose.ENTRY, GroupPurpose.COMPLETION)
            and group.created_at.date() < last_day - timedelta(days=3)
        ):
            out.append(("no-naked-leg", f"entry group {group.group_id} still INCOMPLETE days later"))
    return out


def _facts_kept(deployment: DrillDeployment, final: LoadResult) -> List[Tuple[str, str]]:
    out = []
    present = set(final.seqs)
    present |= {f"position-{pid}" for pid in final.archived_positions}
    present |= {f"group-{gid}" for gid in final.archived_groups}
    previous: Dict[str, int] = {}
    for number, durable in enumerate(deployment.durable_at_crashes, start=1):
        for name, seq in sorted(durable.items()):
            if name not in present:
                out.append(("facts-kept", f"{name} was durable at crash {number} and is gone at the end"))
            if seq < previous.get(name, seq):
                out.append(("facts-kept", f"{name} went back from seq {previous[name]} to {seq} after crash {number}"))
        previous.update(durable)
    for name, seq in sorted(previous.items()):
        if name in final.seqs and final.seqs[name] < seq:
            out.append(("facts-kept", f"{name} ends at seq {final.seqs[name]}, older than durable seq {seq}"))
    return out


# ----------------------------------------------------------------------------------------------- running


def baseline(scenario: Scenario) -> Tuple[DrillDeployment, List[Any]]:
    plan = CrashPlan()
    deployment = scenario.deployment(plan).run()
    return deployment, list(plan.points)


def drill_one(job: Tuple[Scenario, str, int]) -> RunOutcome:
    scenario, kind, number = job
    deployment = scenario.deployment(CrashPlan(crash_at=(number,))).run()
    crashed = bool(deployment.crashes)
    return RunOutcome(kind, number, crashed, len(deployment.runs) - 1, check(deployment))


def choose(points: Sequence[Any], per_kind: Optional[int]) -> List[Tuple[str, int]]:
    """All points, or per kind an evenly spread sample of `per_kind` (first and last included)."""
    chosen: List[Tuple[str, int]] = []
    for kind in CRASH_KINDS:
        numbers = [point.number for point in points if point.kind == kind]
        if per_kind is not None and len(numbers) > per_kind:
            step = (len(numbers) - 1) / max(per_kind - 1, 1)
            numbers = sorted({numbers[round(i * step)] for i in range(per_kind)})
        chosen += [(kind, number) for number in numbers]
    return chosen


def _run_jobs(jobs: List[Tuple[Scenario, str, int]], workers: int) -> Iterable[RunOutcome]:
    if workers <= 1:
        return map(drill_one, jobs)
    executor = ProcessPoolExecutor(max_workers=workers)
    return executor.map(drill_one, jobs, chunksize=4)


def print_table(outcomes: Sequence[RunOutcome], available: Counter[str]) -> int:
    header = f"{'crash kind':<14}{'points':>8}{'tried':>8}{'restarts':>10}" + "".join(
        f"{name:>20}" for name in INVARIANTS
    )
    print(header)
    print("-" * len(header))
    total_violations = 0
    for kind in (*CRASH_KINDS, "all"):
        mine = [o for o in outcomes if kind in ("all", o.kind)]
        counts = Counter(invariant for outcome in mine for invariant, _ in outcome.violations)
        points = sum(available.values()) if kind == "all" else available[kind]
        row = f"{kind:<14}{points:>8}{len(mine):>8}{sum(o.restarts for o in mine):>10}"
        print(row + "".join(f"{counts[name]:>20}" for name in INVARIANTS))
        if kind == "all":
            total_violations = sum(counts.values())
    print(f"\ninvariant violations: {total_violations}")
    return total_violations


SCENARIO_NAMES = ("base", "refused-long", "assignment", "three-strategies")
SHORT_PER_KIND = {
    "base": 25,
    "refused-long": 10,
    "assignment": 10,
    "three-strategies": 10,
}  # what --short samples per kind (CI time)


def drill_scenario(scenario: Scenario, per_kind: Optional[int], jobs: int, show: int) -> int:
    """Baseline + one crash run per chosen point; prints the table; returns the number of violations."""
    began = time.perf_counter()
    first, points = baseline(scenario)
    available = Counter(point.kind for point in points)
    scenario_violations = check(first)
    risk = first.engine.snapshot().risk if first.engine is not None else None
    print(
        f"scenario {scenario.name}: {scenario.weeks} weeks from {scenario.start} (seed {scenario.seed}), "
        f"{len(first.brokerage.orders)} broker orders, {first.brokerage.submissions} submissions, "
        f"breaker {risk.breaker.value if risk else '?'}"
    )
    if isinstance(first.brokerage, RefusesProtectiveLongs):
        print(f"refused protective longs in the baseline: {len(first.brokerage.refused)}; algorithm id kept: L-1")
    print(f"crash points: {dict(available)}; baseline violations: {len(scenario_violations)}")
    for invariant, detail in scenario_violations[:show]:
        print(f"  baseline {invariant}: {detail}")

    jobs_list = [(scenario, kind, number) for kind, number in choose(points, per_kind)]
    outcomes: List[RunOutcome] = []
    for outcome in _run_jobs(jobs_list, jobs):
        outcomes.append(outcome)
        if not outcome.crashed:
            outcome.violations.append(("ran-clean", f"crash point {outcome.number} was never reached"))
    print()
    total = print_table(outcomes, available) + len(scenario_violations)
    shown = 0
    for outcome in outcomes:
        for invariant, detail in outcome.violations:
            if shown < show:
                print(f"  crash at {outcome.kind} #{outcome.number}: {invariant}: {detail}")
            shown += 1
    print(f"drill took {time.perf_counter() - began:.1f} s for {len(outcomes)} crash runs\n")
    return total


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="2 weeks and a spread sample of crash points (CI)")
    parser.add_argument("--weeks", type=int, default=None)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scenario", choices=(*SCENARIO_NAMES, "all"), default="all")
    parser.add_argument("--per-kind", type=int, default=None, help="sample this many points per crash kind")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (the machine has 2 cores)")
    parser.add_argument("--show", type=int, default=15, help="violations to print in full")
    args = parser.parse_args(argv)
    weeks = args.weeks if args.weeks is not None else (2 if args.short else 6)
    names = SCENARIO_NAMES if args.scenario == "all" else (args.scenario,)
    total = 0
    for name in names:
        per_kind = args.per_kind if args.per_kind is not None else (SHORT_PER_KIND[name] if args.short else None)
        total += drill_scenario(Scenario(weeks, args.seed, name), per_kind, args.jobs, args.show)
    print(f"all scenarios: {total} invariant violation(s)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
