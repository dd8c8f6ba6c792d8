"""The crash drill's checker must catch what it claims to catch, and one real crash run must pass it."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from core.records import ContractRecord, PositionRecord, PositionStatus, Right
from tests.crash_drill import (
    CrashPlan,
    DrillDeployment,
    RefusesProtectiveLongs,
    Scenario,
    _whole_units,
    check,
    choose,
    drill_one,
)
from tests.harness.brokerage import FILLED, BrokerHolding, BrokerOrder
from tests.harness.faults import CrashPoint
from tests.harness.lean_stub.enums import Market, OptionRight, OptionStyle
from tests.harness.lean_stub.symbols import Symbol

ONE_WEEK = Scenario(weeks=1, seed=11)


def _run() -> DrillDeployment:
    return ONE_WEEK.deployment(CrashPlan()).run()


def test_whole_units_accepts_multiples_and_refuses_broken_structures() -> None:
    design = {"long": 1, "short": -1, "naked": -2}
    assert _whole_units({"long": 2, "short": -2, "naked": -4}, design)
    assert not _whole_units({"long": 1, "short": -1, "naked": -1}, design)  # a naked leg half filled
    assert not _whole_units({"long": 1, "short": -1}, design)  # a leg missing
    assert not _whole_units({"long": 1, "short": -1, "naked": -2, "extra": 1}, design)


def test_the_uncrashed_scenario_is_clean() -> None:
    assert check(_run()) == []


def test_an_untracked_broker_holding_is_flagged() -> None:
    deployment = _run()
    symbol = Symbol.create_option(
        "SPY", Market.USA, OptionStyle.AMERICAN, OptionRight.PUT, 470.0, datetime(2024, 4, 19)
    )
    deployment.brokerage.holdings[symbol] = BrokerHolding(quantity=-3, average_price=1.0)
    invariants = {invariant for invariant, _ in check(deployment)}
    assert "no-untracked" in invariants


def test_an_orphaned_position_is_flagged() -> None:
    deployment = _run()
    # an open position record (no order group behind it) whose contract the broker does not hold
    ghost = PositionRecord(
        position_id="ghost",
        strategy_id="lt112",
        entry_group_id="ghost-entry",
        entry_time=datetime(2024, 1, 3, 10, 0),
        entry_price=-1.0,
        contracts=(ContractRecord("SPY-20240419-P-430", Right.PUT, 430.0, date(2024, 4, 19), -2),),
        expiry=date(2024, 4, 19),
        strikes=(430.0,),
        entry_vix=None,
        profit_target=100.0,
        max_loss=500.0,
        params_hash="x",
        status=PositionStatus.OPEN,
    )
    deployment.engine._positions[ghost.position_id] = ghost
    invariants = {invariant for invariant, _ in check(deployment)}
    assert "no-orphan" in invariants


def test_a_second_filled_entry_on_the_same_day_is_flagged() -> None:
    deployment = _run()
    first = next(o for o in deployment.brokerage.orders.values() if o.tag.endswith("-entry") and o.filled)
    twin = BrokerOrder(
        "B-999",
        first.symbol,
        first.quantity,
        first.tag.replace("-entry", "x-entry"),
        None,
        first.submitted_at,
        0,
        None,
        filled=first.quantity,
        status=FILLED,
    )
    deployment.brokerage.orders[twin.broker_id] = twin
    invariants = {invariant for invariant, _ in check(deployment)}
    assert "no-duplicate-entry" in invariants


def test_a_fact_lost_after_a_crash_is_flagged() -> None:
    deployment = _run()
    deployment.durable_at_crashes.append({"position-never-saved-anywhere": 3})
    details = [detail for invariant, detail in check(deployment) if invariant == "facts-kept"]
    assert details and "position-never-saved-anywhere" in details[0]


def test_sampling_keeps_first_and_last_point_of_each_kind() -> None:
    points = [CrashPoint(n, "store-save" if n % 2 else "order-submit", "") for n in range(1, 21)]
    chosen = choose(points, per_kind=3)
    saves = [n for kind, n in chosen if kind == "store-save"]
    assert saves[0] == 1 and saves[-1] == 19 and len(saves) == 3
    assert len(choose(points, per_kind=None)) == 20


@pytest.mark.parametrize("kind", ["order-submit", "store-flush"])
def test_one_real_crash_restarts_and_keeps_every_invariant(kind: str) -> None:
    plan = CrashPlan()
    ONE_WEEK.deployment(plan).run()
    number = next(point.number for point in plan.points if point.kind == kind)
    outcome = drill_one((ONE_WEEK, kind, number))
    assert outcome.crashed and outcome.restarts == 1
    assert outcome.violations == []


REFUSED_LONG = Scenario(weeks=1, seed=11, name="refused-long")


def test_the_refused_long_scenario_refuses_a_completion_and_keeps_the_algorithm_id() -> None:
    plan = CrashPlan()
    deployment = REFUSED_LONG.deployment(plan).run()
    assert check(deployment) == []
    assert isinstance(deployment.brokerage, RefusesProtectiveLongs) and deployment.brokerage.refused
    assert deployment.broker_holdings() == {} or deployment.engine.snapshot().open_positions()
    # a crash just before the completion child reaches the broker: the restart keeps the id and rolls back
    number = next(p.number for p in plan.points if p.kind == "order-submit" and "-rec" in p.detail)
    crashed = REFUSED_LONG.deployment(CrashPlan(crash_at=(number,))).run()
    assert [run.algorithm_id for run in crashed.runs] == ["L-1", "L-1"]  # a same-id restart
    assert check(crashed) == []
