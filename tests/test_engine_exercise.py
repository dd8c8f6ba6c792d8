"""Exercise, assignment and expiry booked as what they are (engine/exercise.py), with events shaped
like LEAN's (Common/Orders/OptionExercise/DefaultExerciseModel.cs OptionExercise: the contract FILLED at 0 for
the closing quantity, then, physically settled in the money, the underlying at the strike under the same order
id; cash settlement carries no price, the portfolio credits the intrinsic value)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import List, Optional

import pytest

from core.ports import EventStatus, LegSpec, OrderEventData
from core.records import GroupPurpose, PositionStatus, Right
from strategies.base import EntryPlan
from tests.test_engine import restart
from tests.test_engine_support import NEAR, T0, FakeBroker, FakeRules, FakeStore, FakeView, Rig, make_engine

NAKED = f"SPY-{NEAR:%Y%m%d}-P-400"
TAG = "Simulated option assignment before expiration"


def entered() -> Rig:
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.broker.auto_fill = True
    rig.engine.on_market(FakeView(now=T0))
    rig.rules.want_entry = False  # one cycle
    (position,) = rig.engine.snapshot().open_positions()
    assert {c.symbol: c.quantity for c in position.contracts}[NAKED] == -2
    return rig


def exercise_events(
    order_id: int,
    symbol: str,
    closing: int,
    *,
    shares: int = 0,
    strike: float = 0.0,
    assignment: bool = False,
    in_the_money: bool = True,
    cash_settled: bool = False,
    underlying_price: Optional[float] = None,
) -> List[OrderEventData]:
    events = [
        OrderEventData(
            order_id,
            1,
            symbol,
            EventStatus.FILLED,
            closing,
            0.0,
            TAG,
            T0,
            (),
            assignment,
            "Assigned",
            exercise=True,
            in_the_money=in_the_money,
            cash_settled=cash_settled,
            underlying_price=underlying_price,
        )
    ]
    if shares:
        events.append(
            OrderEventData(
                order_id,
                2,
                symbol.split("-", maxsplit=1)[0],
                EventStatus.FILLED,
                shares,
                strike,
                TAG,
                T0,
                (),
                False,
                "Option Assignment",
                exercise=True,
                in_the_money=True,
            )
        )
    return events


def assign_naked_puts(rig: Rig, *, deliver: bool = True) -> None:
    """LEAN assigns the two short 400 puts early: -2 puts gone, +200 shares bought at 400."""
    rig.broker.held.pop(NAKED)
    rig.broker.held["SPY"] = 200
    rig.broker.average["SPY"] = 400.0
    events = exercise_events(900, NAKED, 2, shares=200, strike=400.0, assignment=True, underlying_price=380.0)
    for event in events if deliver else events[:1]:
        rig.engine.on_order_event(event)


def test_early_assignment_of_a_short_put_flattens_the_shares_and_books_the_pnl() -> None:
    rig = entered()
    assign_naked_puts(rig)
    (settlement,) = [g for g in rig.engine.snapshot().groups.values() if g.purpose is GroupPurpose.SETTLEMENT]
    assert {leg.symbol: (leg.filled_quantity, leg.avg_fill_price) for leg in settlement.legs} == {
        NAKED: (2, 0.0),
        "SPY": (200, 400.0),
    }
    assert "SPY" in rig.store.disk[settlement.record_name].legs[1].symbol  # durable before anything else
    rig.broker.fill_prices["SPY"] = 380.0
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1), price=380.0))
    assert "SPY" not in rig.broker.held  # the shares are sold first, by an order of their own
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=2), price=380.0))
    assert rig.broker.held == {}  # then the spread the assignment left is closed
    (position,) = rig.engine.snapshot().positions.values()
    assert position.status is PositionStatus.CLOSED
    # entry credit 2 (x100), shares bought at 400 and sold at 380 (x200), everything else at 1.00 both ways
    assert position.realized_pnl == pytest.approx(200.0 - 4000.0)
    assert not any(kind == "adopted" for kind, _, _ in rig.store.audits)


def test_an_assignment_survives_a_crash_before_the_shares_are_sold() -> None:
    rig = entered()
    assign_naked_puts(rig, deliver=False)  # the crash comes before the delivery event is even handled
    rig.broker.fill_prices["SPY"] = 380.0
    new = restart(rig, "run2")
    assert not any(kind in ("adopted", "quantity-mismatch") for kind, _, _ in new.store.audits)
    for minute in (31, 32):
        new.engine.on_market(FakeView(now=T0 + timedelta(minutes=minute), price=380.0))
    assert new.broker.held == {}
    (position,) = new.engine.snapshot().positions.values()
    assert position.status is PositionStatus.CLOSED and position.realized_pnl == pytest.approx(-3800.0)


def test_the_same_exercise_event_is_booked_once() -> None:
    rig = entered()
    assign_naked_puts(rig)
    for event in exercise_events(900, NAKED, 2, shares=200, strike=400.0, assignment=True):
        rig.engine.on_order_event(event)
    settlements = [g for g in rig.engine.snapshot().groups.values() if g.purpose is GroupPurpose.SETTLEMENT]
    assert len(settlements) == 1


SPX_EXPIRY = date(2024, 3, 15)


def spx(strike: float, quantity: int) -> LegSpec:
    return LegSpec(f"SPX-{SPX_EXPIRY:%Y%m%d}-P-{strike:g}", "SPX", Right.PUT, strike, SPX_EXPIRY, quantity)


class SpxRules(FakeRules):
    def entry_plan(self, view: FakeView, state: object, size_factor: float) -> Optional[EntryPlan]:  # type: ignore[override]
        if not self.want_entry:
            return None
        self.want_entry = False
        legs = (spx(4400, 1), spx(4350, -1), spx(4000, -2))
        return EntryPlan(self.strategy_id, legs, 1, -1.5, 150.0, 300.0, SPX_EXPIRY, (4000.0, 4350.0, 4400.0), "t")


def test_spx_options_expiring_in_the_money_are_cash_settled_and_booked() -> None:
    rig = make_engine(FakeStore(), FakeBroker(), SpxRules())
    rig.broker.auto_fill = True
    rig.engine.on_market(FakeView(now=T0))
    rig.broker.held.clear()  # expiry: the broker closes everything, the account is credited in cash
    expiry = {"underlying_price": 4300.0, "cash_settled": True}
    events = [
        *exercise_events(901, spx(4400, 1).symbol, -1, **expiry),  # type: ignore[arg-type]
        *exercise_events(902, spx(4350, 1).symbol, 1, assignment=True, **expiry),  # type: ignore[arg-type]
        *exercise_events(903, spx(4000, 1).symbol, 2, in_the_money=False, **expiry),  # type: ignore[arg-type]
    ]
    for event in events:
        rig.engine.on_order_event(event)
    (position,) = rig.engine.snapshot().positions.values()
    assert position.status is PositionStatus.CLOSED
    # credit 2 at entry, the long 4400 put is worth 100, the short 4350 put costs 50, the 4000 puts expire: x100
    assert position.realized_pnl == pytest.approx((2.0 + 100.0 - 50.0) * 100)
    assert rig.broker.submitted[1:] == []  # nothing to flatten: no shares, nothing left


def test_contracts_that_expired_by_the_end_of_the_run_are_booked_without_an_event() -> None:
    """LEAN settles an expiry on the next tradable date (Engine/DataFeeds/Enumerators/DelistingEventProvider.cs):
    a run ending on an expiry day gets no event for it. The run's last records must still be right."""
    rig = entered()
    rig.engine.on_market(FakeView(now=T0 + timedelta(minutes=1), price=470.0))
    rig.engine.end_of_run(datetime(2024, 5, 17, 23, 55))  # every contract expired out of the money
    (position,) = rig.engine.snapshot().positions.values()
    assert position.status is PositionStatus.CLOSED and position.realized_pnl == pytest.approx(200.0)
    assert any(kind == "expiry" for kind, _, _ in rig.store.audits)


def test_contracts_expiring_today_are_not_booked_before_the_close() -> None:
    rig = entered()
    rig.engine.end_of_run(datetime(2024, 3, 15, 15, 30))  # stopped during the expiry day's session
    (position,) = rig.engine.snapshot().open_positions()
    assert position.status is PositionStatus.OPEN


def test_an_assignment_while_the_algorithm_was_down_is_booked_from_holdings() -> None:
    """No event reaches a process that is down: the put is gone and 200 shares are held at the restart. The
    engine books the assignment (shares at the strike) before reconcile, so nothing is adopted or dropped."""
    rig = entered()
    rig.broker.engine = None  # down
    rig.broker.held.pop(NAKED)
    rig.broker.held["SPY"] = 200
    rig.broker.average["SPY"] = 400.0
    rig.broker.fill_prices["SPY"] = 380.0
    new = restart(rig, "run2", keep_memory=True)  # the records were durable
    kinds = [kind for kind, _, _ in new.store.audits]
    assert "assignment" in kinds and "adopted" not in kinds and "quantity-mismatch" not in kinds
    for minute in (31, 32):
        new.engine.on_market(FakeView(now=T0 + timedelta(minutes=minute), price=380.0))
    assert new.broker.held == {}
    (position,) = new.engine.snapshot().positions.values()
    assert position.status is PositionStatus.CLOSED and position.realized_pnl == pytest.approx(-3800.0)


def test_settlement_groups_pass_the_loaders_checks() -> None:
    """A SETTLEMENT group carries shares (x100 a contract, no strike): the semantic checks that quarantine
    impossible records must accept it, or a restart would lose the assignment."""
    from persistence.validation import check_record  # noqa: PLC0415

    rig = entered()
    assign_naked_puts(rig)
    for group in rig.engine.snapshot().groups.values():
        assert check_record(group) is None, group.group_id


def test_an_entry_whose_fills_were_lost_and_whose_short_was_assigned_while_down_is_booked_not_adopted() -> None:
    """The entry's fills were not flushed (only its write-ahead group was), and while down its naked puts were
    assigned: the broker holds none of them but 200 shares no record explains. Recovery books the naked puts'
    fill and their assignment on the entry, builds the position, and sells the shares: nothing is adopted."""
    rig = entered()
    rig.broker.engine = None
    rig.broker.held.pop(NAKED)
    rig.broker.held["SPY"] = 200
    rig.broker.average["SPY"] = 400.0
    new = restart(rig, "run2", keep_memory=False)  # nothing of the entry's fills was flushed
    for minute in (31, 32, 33):
        new.engine.on_market(FakeView(now=T0 + timedelta(minutes=minute), price=380.0))
    assert "SPY" not in new.broker.held
    kinds = [kind for kind, _, _ in new.store.audits]
    assert "assignment" in kinds and "adopted" not in kinds
    settlements = [g for g in new.engine.snapshot().groups.values() if g.purpose is GroupPurpose.SETTLEMENT]
    assert any(leg.symbol == NAKED and leg.filled_quantity == 2 for g in settlements for leg in g.legs)


def test_shares_nobody_claims_are_adopted_and_sold() -> None:
    """Shares no record can explain (no entry of ours had a short that could deliver them): adopted by
    reconcile like any untracked holding and sold at the next open market."""
    rig = make_engine(FakeStore(), FakeBroker(), FakeRules())
    rig.rules.want_entry = False
    rig.broker.auto_fill = True
    rig.broker.engine = None
    rig.broker.held["SPY"] = 200
    rig.broker.average["SPY"] = 400.0
    new = restart(rig, "run2", keep_memory=False)
    for minute in (31, 32, 33):
        new.engine.on_market(FakeView(now=T0 + timedelta(minutes=minute), price=380.0))
    assert "SPY" not in new.broker.held
    assert any(kind == "adopted" and "SPY" in message for kind, message, _ in new.store.audits)
