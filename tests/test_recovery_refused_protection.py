"""Through main.py and the harness: an LT112 entry whose long put is cancelled while the shorts fill, and a
broker that then refuses every buy of that put (LEAN reports a refusal as an OrderStatus.Invalid order event
with the brokerage's message). Recovery must roll the whole entry back, buying the shorts back first, and log
the broker's reason; nothing may stay short without its protection and unmanaged."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, List, Optional, Sequence, Tuple

from tests.harness.brokerage import REJECTED, BrokerOrder, BrokerUpdate, SimulatedBrokerage
from tests.harness.faults import CrashPlan, FaultPlan, LegFault
from tests.harness.lean_stub.symbols import Symbol
from tests.harness.simulation import MARKET_ENTRIES, Deployment

START, END = date(2024, 1, 2), date(2024, 1, 12)
REASON = "Order rejected: the brokerage does not accept buy orders for this contract"
# LT112's entry is the first submission; its first leg is the long put: the broker cancels it, the shorts fill
CANCEL_THE_LONG = FaultPlan(rules={(1, 1): LegFault("cancel")})


class RefusesTheLongPut(SimulatedBrokerage):
    """A test broker: after the entry, every buy of the entry's long put is refused at placement (INVALID)."""

    def __init__(self, *args: Any, every_buy: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.every_buy = every_buy  # refuse every buy after the entry (the shorts cannot be bought back either)
        self.refused_symbol: Optional[Symbol] = None
        self.refused: List[str] = []  # broker ids of the refused buys

    def place(
        self, legs: Sequence[Tuple[Symbol, int]], tag: str, now: datetime, ready_index: int, combo: bool
    ) -> Tuple[List[BrokerOrder], List[BrokerUpdate]]:
        orders, updates = super().place(legs, tag, now, ready_index, combo)
        if tag.endswith("-entry") and self.refused_symbol is None:
            self.refused_symbol = legs[0][0]
            return orders, updates
        for order in orders:
            refused = self.every_buy or order.symbol == self.refused_symbol
            if refused and order.quantity > 0 and order.status != REJECTED:
                order.status = REJECTED
                self.refused.append(order.broker_id)
                updates.append(BrokerUpdate(order.broker_id, "reject", 0, 0.0, now, REASON))
        return orders, updates


def refusing_deployment(
    crash_plan: Optional[CrashPlan] = None, end: date = END, *, every_buy: bool = False
) -> Deployment:
    deployment = Deployment(
        seed=1,
        start=START,
        end=end,
        parameters={"zero-dte-enabled": "false", **MARKET_ENTRIES},
        faults=CANCEL_THE_LONG,
        crash_plan=crash_plan,
    )
    deployment.brokerage = RefusesTheLongPut(deployment.market, 250_000.0, CANCEL_THE_LONG, every_buy=every_buy)
    return deployment


def test_a_refused_protective_long_on_the_completion_rolls_the_entry_back_shorts_first() -> None:
    run = refusing_deployment().run()
    assert run.runtime_error is None
    broker = run.brokerage
    assert isinstance(broker, RefusesTheLongPut) and broker.refused_symbol is not None
    assert broker.refused, "the completion never tried to buy the long put"
    # nothing is left short: the shorts were bought back
    assert run.broker_holdings() == {}, run.broker_holdings()
    # only one refused attempt: a refused protective long is not tried again, the family is rolled back
    assert len(broker.refused) == 1
    errors = [message for _, kind, message in run.algorithm.logs if kind == "error"]
    assert any(REASON in message for message in errors), errors
    snapshot = run.engine.snapshot()
    assert snapshot.strategies["lt112"].state.value in ("WAITING", "ENTERING", "ACTIVE")


def _lt112_positions(run: Deployment) -> List[Any]:
    return [p for p in run.engine.snapshot().open_positions("lt112")]


def test_when_even_the_buy_back_is_refused_the_shorts_become_a_managed_needs_attention_position() -> None:
    run = refusing_deployment(every_buy=True).run()
    assert run.runtime_error is None
    broker = run.brokerage
    assert isinstance(broker, RefusesTheLongPut)
    held = run.broker_holdings()
    assert held and all(quantity < 0 for quantity in held.values())  # the shorts could not be bought back
    # the exposure is a position of its strategy, flagged, not a strategy in ERROR with nobody managing it
    (position,) = _lt112_positions(run)
    assert {c.symbol: c.quantity for c in position.contracts} == held
    assert position.attention.startswith("NEEDS ATTENTION") and REASON in position.attention
    snapshot = run.engine.snapshot()
    assert snapshot.strategies["lt112"].state.value == "ACTIVE"
    assert snapshot.strategies["lt112"].position_id == position.position_id
    # the incomplete entry no longer claims the shorts: the position does, nothing was adopted
    (entry,) = [g for g in snapshot.groups.values() if g.group_id.endswith("-entry")]
    assert entry.status.value == "RESOLVED" and (entry.decision or "").startswith("NEEDS ATTENTION")
    audit = run.engine._store.get("audit")
    kinds = [e.kind for e in (audit.entries if audit is not None else ())]
    assert "needs-attention" in kinds and "adopted" not in kinds
    errors = [message for _, kind, message in run.algorithm.logs if kind == "error"]
    assert any("NEEDS ATTENTION" in message and REASON in message for message in errors)
    # bounded: three refused recovery orders, then at most one exit attempt a day (none is due in this window)
    assert len(broker.refused) <= 3 + (END - START).days, len(broker.refused)


class SameIdDeployment(Deployment):
    """Every (re)start keeps the first algorithm id (a same-id live restart)."""

    def _algorithm_id(self) -> str:
        return "L-1"


def test_a_crash_while_giving_up_restarts_under_the_same_id_into_the_same_needs_attention_position() -> None:
    counting = refusing_deployment(CrashPlan(), every_buy=True).run()
    (first,) = _lt112_positions(counting)
    # crash exactly when the needs-attention position is first written: it never reaches the disk, the
    # RESOLVED entry with its NEEDS ATTENTION decision does; the restart must rebuild the same flagged position
    saves = [
        p for p in counting.crash_plan.points if p.kind == "store-save" and f"position-{first.position_id}" in p.detail
    ]
    crash = CrashPlan(crash_at=(saves[0].number,))
    run = SameIdDeployment(
        seed=1,
        start=START,
        end=END,
        parameters={"zero-dte-enabled": "false", **MARKET_ENTRIES},
        faults=CANCEL_THE_LONG,
        crash_plan=crash,
    )
    run.brokerage = RefusesTheLongPut(run.market, 250_000.0, CANCEL_THE_LONG, every_buy=True)
    run.run()
    assert run.runtime_error is None and [r.algorithm_id for r in run.runs] == ["L-1", "L-1"]
    (position,) = _lt112_positions(run)
    assert position.attention.startswith("NEEDS ATTENTION")
    assert {c.symbol: c.quantity for c in position.contracts} == run.broker_holdings()
    broker = run.brokerage
    assert isinstance(broker, RefusesTheLongPut)
    # the refused recovery orders were not sent again after the restart (three, plus exit attempts a day)
    assert len(broker.refused) == len(counting.brokerage.refused)
