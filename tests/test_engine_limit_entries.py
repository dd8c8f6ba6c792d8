"""Entries as combo limit orders at mid, walked toward the far side within a bound (engine/limit_entries.py),
through the engine with the hand-written fake broker; LEAN's side of combo limits is the harness's
(tests/test_lean_conformance.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Dict

import pytest

from core.params import Params
from core.ports import ListLog, OptionQuote
from core.records import GroupPurpose, GroupStatus, StrategyState
from engine.engine import TradingEngine
from engine.limit_entries import ENTRY_CHASE_STEPS, ENTRY_LIMIT_STEPS
from tests.test_engine_support import STRUCTURE, T0, FakeBroker, FakeRisk, FakeRules, FakeStore, FakeView

# per-unit quotes of the 1-1-2 (buy 440, sell 435, sell 2x 400): mid = 6.10 - 5.10 - 2 x 1.20 = -1.40 (credit),
# far side = 6.30 - 5.00 - 2 x 1.15 = -1.00
BID_ASK = {440.0: (5.90, 6.30), 435.0: (5.00, 5.20), 400.0: (1.15, 1.25)}


def quotes(shift: float = 0.0) -> Dict[str, OptionQuote]:
    """Every leg of STRUCTURE quoted, each bid and ask moved by `shift`."""
    out = {}
    for spec in STRUCTURE:
        bid, ask = BID_ASK[spec.strike]
        out[spec.symbol] = OptionQuote(
            spec.symbol, spec.underlying, spec.right, spec.strike, spec.expiry, bid + shift, ask + shift, None
        )
    return out


def rig(params: Params) -> tuple[TradingEngine, FakeBroker, FakeRules, FakeStore, ListLog]:
    store, broker, rules, log = FakeStore(), FakeBroker(), FakeRules(), ListLog()
    broker.auto_fill = True
    engine = TradingEngine(store, broker, params, log, [rules], risk_factory=FakeRisk)
    broker.engine = engine
    engine.start(T0)
    engine.on_warmup_finished(FakeView(now=T0, quotes=quotes()))
    return engine, broker, rules, store, log


def entry_tags(broker: FakeBroker) -> list[str]:
    return [tag for tag, _ in broker.submitted if tag.endswith("-entry")]


def test_an_entry_goes_out_as_a_combo_limit_at_mid_and_fills() -> None:
    engine, broker, _, _, _ = rig(Params())
    engine.on_market(FakeView(now=T0, quotes=quotes(), margin_used=0.0))
    (tag,) = entry_tags(broker)
    assert broker.limits[tag] == [pytest.approx(-1.40)]  # the mid, per unit of the ratio legs: a credit
    (entry,) = [g for g in engine.snapshot().groups.values() if g.purpose is GroupPurpose.ENTRY]
    assert entry.status is GroupStatus.FILLED


def test_market_entries_are_an_option() -> None:
    engine, broker, _, _, _ = rig(Params(entry_orders="market"))
    engine.on_market(FakeView(now=T0, quotes=quotes(), margin_used=0.0))
    assert len(entry_tags(broker)) == 1 and broker.limits == {}


def test_an_unfilled_limit_is_walked_to_the_far_side_within_its_bound_then_cancelled_never_resent() -> None:
    engine, broker, rules, _, log = rig(Params())
    broker.limits_fill = False
    now = T0
    engine.on_market(FakeView(now=now, quotes=quotes(), margin_used=0.0))
    (tag,) = entry_tags(broker)
    rules.want_entry = False  # one attempt is the subject here
    for _ in range(ENTRY_LIMIT_STEPS + ENTRY_CHASE_STEPS + 8):
        now += timedelta(minutes=1)
        engine.on_market(FakeView(now=now, quotes=quotes(), margin_used=0.0))
    limits = broker.limits[tag]
    assert len(limits) == 1 + ENTRY_LIMIT_STEPS + ENTRY_CHASE_STEPS  # the first limit, then one move per step
    assert limits == sorted(limits) and limits[0] == pytest.approx(-1.40)
    assert limits[ENTRY_LIMIT_STEPS] == pytest.approx(-0.99)  # a tick past the far side (-1.00)
    assert all(limit <= -0.01 for limit in limits), "a credit structure's limit never asks for a debit"
    assert entry_tags(broker) == [tag], "never re-sent"
    (entry,) = [g for g in engine.snapshot().groups.values() if g.purpose is GroupPurpose.ENTRY]
    assert entry.status is GroupStatus.CANCELED
    assert engine.snapshot().strategies["s1"].state is StrategyState.WAITING
    assert any("cancelling" in line for line in log.infos)


def test_the_walk_follows_the_market_but_never_gives_up_more_than_half_the_credit() -> None:
    engine, broker, rules, _, _ = rig(Params())
    broker.limits_fill = False
    engine.on_market(FakeView(now=T0, quotes=quotes(), margin_used=0.0))
    (tag,) = entry_tags(broker)
    rules.want_entry = False
    # the naked puts cheapen a lot (less credit): the far side becomes a debit; the limit stops at half the
    # credit at mid when the entry went out (-0.70)
    cheap = {
        symbol: replace(q, bid=q.bid * 0.3, ask=q.ask * 0.3) if q.strike == 400.0 else q
        for symbol, q in quotes().items()
    }
    now = T0
    for _ in range(ENTRY_LIMIT_STEPS + ENTRY_CHASE_STEPS):
        now += timedelta(minutes=1)
        engine.on_market(FakeView(now=now, quotes=cheap, margin_used=0.0))
    assert max(broker.limits[tag]) <= -0.70 + 1e-9


def test_a_credit_structure_quoted_for_a_debit_is_not_entered_and_says_why() -> None:
    engine, broker, _, store, _ = rig(Params())
    debit = {s: replace(q, bid=q.bid + 3.0, ask=q.ask + 3.0) if q.strike == 440.0 else q for s, q in quotes().items()}
    engine.on_market(FakeView(now=T0, quotes=debit, margin_used=0.0))
    assert entry_tags(broker) == []
    assert any(kind == "entry-unpriced" for kind, _, _ in store.audits)
    assert engine.snapshot().strategies["s1"].state is StrategyState.WAITING
