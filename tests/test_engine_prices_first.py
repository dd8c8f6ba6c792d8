"""Orders wait for prices: LEAN refuses an order for a security with price 0 or no data
(Algorithm/QCAlgorithm.Trading.cs `PreOrderChecksImpl`: SecurityPriceZero, SecurityHasNoData). After a live
restart `on_warmup_finished` runs before the first slice, so the contracts a completion adds have no price yet."""

from __future__ import annotations

from datetime import timedelta

from core.records import GroupPurpose, GroupStatus, StrategyState
from tests.test_engine import assert_whole_structure_or_flat, groups, partially_filled_entry, restart, state
from tests.test_engine_support import T0, FakeView, Rig


def _down_with_unpriced_completion() -> tuple[Rig, set[str]]:
    rig = partially_filled_entry()
    for order in rig.broker.orders.values():
        order.open = False  # the orders died with the run
    rig.broker.auto_fill = True
    unfilled = {s for s, q in rig.broker.held.items() if q} ^ {o.symbol for o in rig.broker.orders.values()}
    rig.broker.unpriced = set(unfilled)
    return rig, unfilled


def test_completion_after_a_restart_waits_for_prices_then_completes() -> None:
    rig, unfilled = _down_with_unpriced_completion()
    assert unfilled
    new = restart(rig, "run2")
    # nothing was sent while the completion's contracts had no price, and nothing was refused
    assert new.broker.submitted == rig.broker.submitted[:1]
    assert not groups(new, GroupPurpose.COMPLETION) and not groups(new, GroupPurpose.ROLLBACK)
    assert any("waiting for a first price" in line for line in new.log.infos)
    assert state(new) is not StrategyState.ERROR
    new.broker.unpriced.clear()  # the first slice brings the prices
    new.engine.on_market(FakeView(now=T0 + timedelta(minutes=31)))
    assert_whole_structure_or_flat(new)
    assert state(new) is StrategyState.ACTIVE
    assert all(g.status is not GroupStatus.FAILED for g in new.engine.snapshot().groups.values())


def test_the_wait_for_prices_is_bounded_and_then_the_broker_decides() -> None:
    rig, _ = _down_with_unpriced_completion()
    new = restart(rig, "run2")
    new.engine.on_market(FakeView(now=T0 + timedelta(minutes=32)))
    assert new.broker.submitted == rig.broker.submitted[:1]  # still waiting inside the bound
    new.engine.on_market(FakeView(now=T0 + timedelta(minutes=36)))
    assert len(new.broker.submitted) > 1  # past the bound: ordered anyway, the refusal is booked
    assert any(kind == "no-price" for kind, _, _ in new.store.audits)
    assert any(g.status is GroupStatus.FAILED for g in new.engine.snapshot().groups.values())


def test_the_wait_does_not_run_down_while_the_market_is_closed() -> None:
    rig, _ = _down_with_unpriced_completion()
    new = restart(rig, "run2", market_open=False)
    new.engine.on_market(FakeView(now=T0 + timedelta(hours=3), market_open=False))
    new.broker.unpriced.clear()
    new.engine.on_market(FakeView(now=T0 + timedelta(hours=20)))
    assert_whole_structure_or_flat(new)
    assert not any(kind == "no-price" for kind, _, _ in new.store.audits)
