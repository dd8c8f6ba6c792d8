"""main.py's LeanBroker sends combo limit orders as LEAN takes them (the harness models LEAN's combo limit:
tests/test_lean_conformance.py, "combo limit orders"), and core/combo_limits.py prices them."""

from __future__ import annotations

import sys
from datetime import date
from typing import Any, Dict, List

from core.combo_limits import limit_walk, unit_price
from core.contracts import contract_key
from core.ports import LegSpec
from core.records import Right
from tests.harness.lean_stub.enums import OrderStatus, OrderType
from tests.harness.loader import load_main
from tests.harness.simulation import Deployment

FRIDAY = date(2024, 1, 5)
WEEKLY = date(2024, 1, 12)  # a listed Friday weekly (tests/harness/market_calendar.py)
QUIET = {"lt112-enabled": "false", "zero-dte-enabled": "false"}


def _spread_algorithm(act: Any) -> type:
    """main's algorithm with both strategies off; at 10:00 it hands a LeanBroker and a put credit spread of two
    units (short the higher strike, a week out; main.py subscribes the contracts) to `act`, then keeps calling it
    every step with the same state."""
    base = load_main()
    lean_broker = sys.modules["main"].LeanBroker

    class Spread(base):  # type: ignore[misc, valid-type]
        def on_data(self, data: Any) -> None:
            super().on_data(data)
            if self.is_warming_up:
                return
            state: Dict[str, Any] = self.__dict__.setdefault("spread_state", {})
            if not state and (self.time.hour, self.time.minute) == (10, 0):
                short = float(round(self.securities[self.underlying_symbol].price)) - 2.0
                state["legs"] = [
                    LegSpec(contract_key("SPY", WEEKLY, Right.PUT, strike), "SPY", Right.PUT, strike, WEEKLY, quantity)
                    for strike, quantity in ((short, -2), (short - 3.0, 2))
                ]
                state["broker"] = lean_broker(self)
            if state:
                act(self, state)

    return Spread


def _run(act: Any) -> Any:
    return Deployment(seed=7, start=FRIDAY, end=FRIDAY, algorithm_class=_spread_algorithm(act), parameters=QUIET).run()


def _quotes(algorithm: Any, legs: List[LegSpec]) -> Dict[str, Any]:
    return {leg.symbol: algorithm.securities[algorithm.symbol_for(leg)] for leg in legs}


def test_lean_broker_sends_a_combo_limit_as_ratio_legs_times_units_with_the_group_limit() -> None:
    def act(algorithm: Any, state: Dict[str, Any]) -> None:
        if "orders" not in state:
            state["orders"] = state["broker"].submit_combo_limit(state["legs"], -50.0, "spread-entry")

    algorithm = _run(act).algorithm
    orders = algorithm.spread_state["orders"]
    assert len(orders) == 2
    lean_orders = [algorithm.transactions.get_order_by_id(o.order_id) for o in orders]
    assert {o.type for o in lean_orders} == {OrderType.COMBO_LIMIT}
    group = lean_orders[0].group_order_manager
    assert group.quantity == 2 and sorted(o.quantity for o in lean_orders) == [-2, 2]
    assert group.limit_price == -50.0
    assert all(o.status == OrderStatus.SUBMITTED for o in lean_orders), "asks more credit than the width: works on"


def test_a_zero_limit_is_refused_with_a_reason_and_never_becomes_a_market_order() -> None:
    def act(algorithm: Any, state: Dict[str, Any]) -> None:
        if "orders" not in state:
            state["orders"] = state["broker"].submit_combo_limit(state["legs"], 0.0, "spread-entry")
            state["reason"] = state["broker"].refusal_reason("spread-entry")

    deployment = _run(act)
    state = deployment.algorithm.spread_state
    assert state["orders"] == [] and "limit price" in state["reason"]
    assert deployment.brokerage.submissions == 0


def test_a_credit_entry_walked_from_mid_toward_the_far_side_fills_for_a_credit_within_its_bound() -> None:
    """The walk the engine is to run: submit at mid, move the limit one walk price per step with update_limit,
    give up at the end. Each fill is a credit (LEAN fills a buying group only below a negative limit)."""

    def act(algorithm: Any, state: Dict[str, Any]) -> None:
        broker, legs = state["broker"], state["legs"]
        if "walk" not in state:
            securities = _quotes(algorithm, legs)
            mid = unit_price(legs, {k: (s.bid_price + s.ask_price) / 2 for k, s in securities.items()})
            far = unit_price(
                legs,
                {
                    leg.symbol: (
                        securities[leg.symbol].ask_price if leg.quantity > 0 else securities[leg.symbol].bid_price
                    )
                    for leg in legs
                },
            )
            state["walk"] = limit_walk(mid, far, 0.01, 4, ceiling=-0.05)
            state["orders"] = broker.submit_combo_limit(legs, state["walk"][0], "spread-entry")
            state["step"] = 0
            return
        order = algorithm.transactions.get_order_by_id(state["orders"][0].order_id)
        if order.status == OrderStatus.FILLED:
            state.setdefault("late", broker.update_limit(state["orders"][0].order_id, state["walk"][-1]))
        elif state["step"] + 1 < len(state["walk"]):
            state["step"] += 1
            state["accepted"] = broker.update_limit(state["orders"][1].order_id, state["walk"][state["step"]])

    deployment = _run(act)
    algorithm = deployment.algorithm
    state = algorithm.spread_state
    walk = state["walk"]
    assert walk == sorted(set(walk)) and walk[-1] <= -0.05
    assert state["step"] >= 1 and state.get("accepted", "") == "", "mid did not cross; the limit was walked"
    lean_orders = [algorithm.transactions.get_order_by_id(o.order_id) for o in state["orders"]]
    assert all(o.status == OrderStatus.FILLED for o in lean_orders), "the walk reached a crossing price"
    tickets = [algorithm.transactions.get_order_ticket(o.id) for o in lean_orders]
    paid = sum(t.quantity_filled * t.average_fill_price for t in tickets)
    assert paid < 0, "received a credit"
    assert "Filled" in state["late"], "a filled order refuses further updates, with LEAN's reason"
