"""Issue 10 (trading rules a trader can trust), each point driven through the harness running main.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

import pytest

from core.params import Params
from core.records import BreakerLevel, GroupPurpose, PositionRecord, PositionStatus, Right, RiskRecord
from core.selection import STRIKE_STEP, listed_strikes, strike_for_delta
from engine.risk import RiskManager
from persistence.codec import from_body, to_body
from persistence.migrations import upgrade
from strategies.lt112 import LT112, LT112Config
from strategies.zero_dte import ZeroDte, ZeroDteConfig
from tests.crash_drill import read_store
from tests.fake_market import FakeView, position_from_plan
from tests.harness.faults import CrashPlan, FaultPlan, LegFault
from tests.harness.lean_stub.enums import OptionStyle
from tests.harness.lean_stub.option_universe import contract_symbol
from tests.harness.simulation import Deployment
from tests.test_lt112 import CHAIN, FIRST_WED, with_naked_mid
from tests.test_lt112 import RULES as LT112_RULES
from tests.test_lt112 import waiting as lt112_waiting
from tests.test_zero_dte import ENTRY, OPEN, view_at, waiting

ONLY_ZERO_DTE = {"lt112-enabled": "false"}


def _exit_groups(deployment: Deployment, strategy_id: str) -> list:
    snapshot = deployment.engine.snapshot()
    return [g for g in snapshot.groups.values() if g.strategy_id == strategy_id and g.purpose is GroupPurpose.EXIT]


# -- 1. early-close days ------------------------------------------------------------------------------------------


def test_zero_dte_on_an_early_close_friday_is_closed_before_the_13_00_close() -> None:
    friday = date(2024, 11, 29)  # the day after Thanksgiving: the exchange closes at 13:00
    # a target and a stop that cannot fire: only the clock rules close the position
    parameters = {**ONLY_ZERO_DTE, "zero-dte-profit-target": "1.0", "zero-dte-stop-credit-multiple": "50"}
    deployment = Deployment(seed=1, start=friday, end=friday, parameters=parameters).run()
    assert deployment.runtime_error is None
    snapshot = deployment.engine.snapshot()
    entered = [p for p in snapshot.positions.values() if p.strategy_id == "zero_dte"]
    assert entered, "the 10:30 entry happens on a 13:00-close Friday too"
    exits = _exit_groups(deployment, "zero_dte")
    assert exits and all(g.created_at <= datetime.combine(friday, time(12, 30)) for g in exits)
    assert all(g.status.value == "FILLED" for g in exits), "closed by our exit, not by expiry"
    assert not deployment.broker_holdings(), "nothing may be held into the 13:00 expiry"


# -- 2. no stuck exits --------------------------------------------------------------------------------------------


def test_an_exit_the_broker_refuses_escalates_and_ends_in_needs_attention() -> None:
    """The broker refuses every order after the 0DTE entry (submission 1). The engine logs the broker's reason,
    changes route (combo, then legging out buys first) and after a bound flags the position NEEDS ATTENTION
    (persisted): never the same refused order bar after bar (before: one identical combo every 5 minutes)."""
    friday = date(2024, 1, 5)
    refuse_all = FaultPlan(rules={(n, 1): LegFault("reject") for n in range(2, 80)})
    deployment = Deployment(seed=1, start=friday, end=friday, parameters=ONLY_ZERO_DTE, faults=refuse_all).run()
    assert deployment.runtime_error is None
    exits = _exit_groups(deployment, "zero_dte")
    assert exits, "the scenario exits"
    assert len(exits) <= 4 + 1, f"{len(exits)} exit orders: bounded (4, then one a day once flagged)"
    logs = [message for _, _, message in deployment.algorithm.logs]
    assert any("refused" in m and "rejected by the broker" in m for m in logs), "the broker's reason is logged"
    assert any("legging out" in m for m in logs), "a different route is tried"
    flagged = [p for p in deployment.engine.snapshot().positions.values() if p.attention]
    assert flagged and "NEEDS ATTENTION" in flagged[0].attention
    loaded = read_store(deployment)
    # the flagged condor then expires that afternoon: its expiry is booked (closed, retired to the archive)
    position_id = flagged[0].position_id
    stored = loaded.positions.get(position_id) or loaded.archived_positions[position_id]
    assert stored.attention == flagged[0].attention, "NEEDS ATTENTION is persisted"


# -- 5. risk memory per strategy ----------------------------------------------------------------------------------


def _closed(position_id: str, strategy_id: str, pnl: float, day: date) -> PositionRecord:
    moment = datetime.combine(day, time(15, 0))
    return PositionRecord(
        position_id,
        strategy_id,
        f"{position_id}-entry",
        moment,
        -1.0,
        (),
        day,
        (),
        None,
        100.0,
        200.0,
        "h",
        status=PositionStatus.CLOSED,
        exit_time=moment,
        realized_pnl=pnl,
    )


def test_a_zero_dte_stop_streak_leaves_lt112_sizing_and_entries_alone() -> None:
    risk = RiskManager(None, Params(), datetime(2024, 1, 2, 9, 31))
    risk.update_equity(250_000.0, datetime(2024, 1, 5, 9, 31))
    for n, day in enumerate((date(2024, 1, 5), date(2024, 1, 12), date(2024, 1, 19))):
        risk.update_equity(250_000.0, datetime.combine(day, time(9, 31)))
        risk.on_position_closed(_closed(f"z{n}", "zero_dte", -2_000.0, day), datetime.combine(day, time(15, 0)))
    big_loss = _closed("z9", "zero_dte", -9_000.0, date(2024, 1, 19))
    risk.on_position_closed(big_loss, datetime(2024, 1, 19, 15, 5))
    assert risk.size_factor("zero_dte") == 0.5, "0DTE's own streak halves 0DTE"
    assert risk.size_factor("lt112") == 1.0, "LT112 never lost: full size"
    assert not risk.entries_allowed(15.0, "zero_dte"), "0DTE lost its daily limit today"
    assert risk.entries_allowed(15.0, "lt112")


def test_risk_v1_body_loads_with_no_per_strategy_losses() -> None:
    record = RiskRecord(250_000.0, 3, 0.0, None, 0.0, BreakerLevel.NONE, None, (), datetime(2024, 1, 2))
    v1 = {k: v for k, v in to_body(record).items() if k != "strategy_losses"}
    v1.update(drawdown=0.0, daily_drawdowns=[])  # v1 and v2 still carried these (gone in v3)
    body, migrated = upgrade("risk", 1, v1)
    assert migrated and from_body(RiskRecord, body) == record


def test_lt112_enters_on_every_first_wednesday_over_12_weeks_while_zero_dte_loses() -> None:
    """Seed 11, 12 weeks from 2024-01-02: 0DTE stops make a losing streak in January; LT112 still enters on its
    schedule (2024-02-07 was skipped with 0 units at half size when the streak was shared)."""
    deployment = Deployment(seed=11, start=date(2024, 1, 2), end=date(2024, 3, 25)).run()
    assert deployment.runtime_error is None
    snapshot = deployment.engine.snapshot()
    entries = sorted(p.entry_time.date() for p in snapshot.positions.values() if p.strategy_id == "lt112")
    # with the harness's put skew the 02-07 structure sits further out (naked puts at 380) and is still open on
    # 03-06, so LT112 (one structure at a time) has nothing to enter that day
    assert entries == [date(2024, 1, 3), date(2024, 2, 7)]
    still_open = [p for p in snapshot.positions.values() if p.strategy_id == "lt112" and p.exit_time is None]
    assert [p.entry_time.date() for p in still_open] == [date(2024, 2, 7)]
    zero_dte_losses = [
        p for p in snapshot.positions.values() if p.strategy_id == "zero_dte" and (p.realized_pnl or 0) < 0
    ]
    assert len(zero_dte_losses) >= 3, "the scenario has a 0DTE losing streak"


# -- 6. 0DTE targets from the fill, credit-to-width filter --------------------------------------------------------


def test_zero_dte_targets_are_computed_from_the_credit_actually_received() -> None:
    friday = date(2024, 1, 5)
    deployment = Deployment(seed=1, start=friday, end=friday, parameters=ONLY_ZERO_DTE).run()
    position = next(p for p in deployment.engine.snapshot().positions.values() if p.strategy_id == "zero_dte")
    entry = deployment.engine.snapshot().groups[position.entry_group_id]
    filled = -sum(leg.filled_quantity * leg.avg_fill_price for leg in entry.legs) * 100
    assert position.credit_received == pytest.approx(filled)
    assert entry.credit is not None and entry.credit != pytest.approx(filled), "fills differ from the planned mid"
    assert position.profit_target == pytest.approx(ZeroDteConfig().profit_target * filled)
    assert position.max_loss == pytest.approx(ZeroDteConfig().stop_credit_multiple * filled)


def test_zero_dte_refuses_a_credit_too_small_for_its_width() -> None:
    rules = ZeroDte(ZeroDteConfig(min_credit_width=0.5), Params())
    plan = rules.entry_plan(view_at(ENTRY, OPEN), waiting(), 1.0)
    assert plan is None and "below 50% of the 3-point width" in rules.last_reason
    assert ZeroDte(ZeroDteConfig(), Params()).entry_plan(view_at(ENTRY, OPEN), waiting(), 1.0) is not None


# -- 7. facts, not re-derivations ---------------------------------------------------------------------------------


def test_a_changed_parameter_after_restart_leaves_an_open_lt112_position_targets_alone() -> None:
    plan = LT112_RULES.entry_plan(FakeView(FIRST_WED, CHAIN, equity=1_000_000.0), lt112_waiting(), 1.0)
    assert plan is not None and plan.credit is not None
    opened = position_from_plan(plan, "p1", FIRST_WED)
    naked = min((c for c in opened.contracts if c.quantity < 0), key=lambda c: c.strike)
    entry_mid = next(q.mid for q in CHAIN if q.symbol == naked.symbol)
    later = FIRST_WED + timedelta(days=20)
    # the NPs can be bought back for 40 % of what they brought in: 60 % profit, short of the 95 % target
    view = with_naked_mid(opened, entry_mid * 0.4, later)
    assert LT112_RULES.exit_reason(view, opened) is None
    restarted = LT112(LT112Config(np_profit_target=0.5), Params())  # a person changed the target to 50 %
    assert restarted.exit_reason(view, opened) is None, "the open position keeps the 95 % it was opened with"
    assert opened.profit_target == pytest.approx(0.95 * opened.credit_received)


# -- 4. sizing that trades ----------------------------------------------------------------------------------------


def test_lt112_on_spy_with_250000_trades_at_least_one_unit_and_a_size_of_0_is_logged_with_its_numbers() -> None:
    start = date(2024, 1, 2)
    normal = Deployment(seed=11, start=start, end=date(2024, 1, 3), parameters={"zero-dte-enabled": "false"}).run()
    lt112 = [p for p in normal.engine.snapshot().positions.values() if p.strategy_id == "lt112"]
    assert lt112 and min(abs(c.quantity) for c in lt112[0].contracts) >= 1
    small = Deployment(seed=11, start=start, end=date(2024, 1, 3), cash=5_000.0).run()
    lines = [(level, m) for _, level, m in small.algorithm.logs if "lt112 entry skipped" in m]
    assert lines and lines[0][0] == "log", "a size of 0 is logged at info"
    assert "0 units (equity 5000, margin per unit" in lines[0][1]


def test_lt112_margin_follows_the_underlying_traded_premium_included() -> None:
    spot, strike, mid = 4700.0, 4000.0, 12.0
    naked = replace(CHAIN[0], strike=strike, bid=mid - 0.5, ask=mid + 0.5)
    expected_each = mid + max(0.15 * spot - (spot - strike), 0.10 * strike)  # index options: 15 %
    spx = LT112(LT112Config(), Params(underlying="SPX"))
    assert spx.margin_per_unit(spot, ((naked, -2),)) == pytest.approx(2 * expected_each * 100)
    spy_each = mid + max(0.20 * spot - (spot - strike), 0.10 * strike)
    assert LT112(LT112Config(), Params()).margin_per_unit(spot, ((naked, -2),)) == pytest.approx(2 * spy_each * 100)


# -- 3. strike reach ----------------------------------------------------------------------------------------------


def _skewed_five_delta_put(spot: float) -> float:
    """Where a 5-delta put at 120 DTE sits when the put wing trades at 28 % vol (a normal SPX/SPY skew)."""
    return strike_for_delta(spot, 0.05, Right.PUT, 0.28, 120 / 365)


def _subscribed(deployment: Deployment, underlying: str) -> list[tuple[int, Right, float]]:
    """(days to expiry, right, strike) of every listed contract inside main.py's option universe at the run's
    last step before the close (today's expiry still trades), as the harness models LEAN's selection
    (QCAlgorithm.in_option_universe)."""
    market, algorithm = deployment.market, deployment.algorithm
    index = len(market.steps) - 2
    today = market.steps[index].time.date()
    canonical = algorithm.option_symbol
    found = []
    for quote in market.chain(index, underlying=underlying):
        symbol = contract_symbol(canonical, quote.expiry, quote.strike, quote.right, OptionStyle.AMERICAN)
        if algorithm.in_option_universe(symbol, index):
            found.append(((quote.expiry - today).days, quote.right, quote.strike))
    return found


def _assert_reaches_the_5_delta_put_at_120_dte(deployment: Deployment, underlying: str) -> None:
    assert deployment.runtime_error is None
    spot = deployment.market.level(len(deployment.market.steps) - 2, underlying)
    subscribed = _subscribed(deployment, underlying)
    lt112 = LT112Config()
    windows = {days for days, right, _ in subscribed if right == Right.PUT and days >= lt112.dte - lt112.dte_window}
    assert windows, "no LT112 expiry subscribed"
    for days in windows:
        lowest = min(strike for d, right, strike in subscribed if d == days and right == Right.PUT)
        assert lowest <= _skewed_five_delta_put(spot), f"{days} DTE puts reach down to {lowest} only"


def test_the_option_subscription_reaches_the_5_delta_put_at_120_dte_for_spy() -> None:
    deployment = Deployment(seed=11, start=date(2024, 1, 3), end=date(2024, 1, 3)).run()
    _assert_reaches_the_5_delta_put_at_120_dte(deployment, "SPY")


def test_the_option_subscription_reaches_the_5_delta_put_at_120_dte_for_spx() -> None:
    """The same through main.py and the harness on SPX (index options, $5 SPXW strikes at ten times the level)."""
    deployment = Deployment(
        seed=11, start=date(2024, 1, 3), end=date(2024, 1, 3), parameters={"underlying": "SPX"}
    ).run()
    _assert_reaches_the_5_delta_put_at_120_dte(deployment, "SPX")


def test_the_option_subscription_is_the_union_of_each_strategys_reach_not_one_rectangle() -> None:
    """SPX with the default strategies: LT112's puts in its DTE window and today's 0DTE strikes both sides, and
    nothing else (one rectangle around both held every right, every expiry and the widest strikes)."""
    deployment = Deployment(
        seed=11, start=date(2024, 1, 3), end=date(2024, 1, 3), parameters={"underlying": "SPX"}
    ).run()
    assert deployment.runtime_error is None
    subscribed = _subscribed(deployment, "SPX")
    lt112, zero_dte = LT112Config(), ZeroDteConfig()
    calls = {days for days, right, _ in subscribed if right == Right.CALL}
    assert calls == {0}, f"calls subscribed at {sorted(calls)} days: only 0DTE trades calls"
    put_days = {days for days, right, _ in subscribed if right == Right.PUT}
    assert all(days == 0 or lt112.dte - lt112.dte_window <= days for days in put_days), sorted(put_days)
    selected_at = deployment.market.level(0, "SPX")  # the selection's price on a run's first day
    todays = [strike for days, _, strike in subscribed if days == 0]  # 3 % of spot plus a wing each side
    assert selected_at * 0.94 < min(todays) <= selected_at * 0.97 - zero_dte.width_index_points
    assert selected_at * 1.03 + zero_dte.width_index_points <= max(todays) < selected_at * 1.06
    assert len(subscribed) < 1500, f"{len(subscribed)} contracts subscribed"


def test_the_filter_reach_counts_spx_strikes_at_their_spacing() -> None:
    for underlying, spot in (("SPY", 470.0), ("SPX", 4700.0)):
        market = Params(underlying=underlying)
        reach = LT112(LT112Config(), market).option_reach(spot)
        wings = ZeroDte(ZeroDteConfig(), market).option_reach(spot)
        below = listed_strikes(max(reach.points_below, wings.points_below), underlying)
        above = listed_strikes(max(reach.points_above, wings.points_above), underlying)
        step = STRIKE_STEP[underlying]
        assert below * step >= spot - _skewed_five_delta_put(spot)
        assert above * step >= spot * 0.03
        assert reach.max_days >= LT112Config().dte + LT112Config().dte_window
    spx_reach = LT112(LT112Config(), Params(underlying="SPX")).option_reach(4700.0)
    assert listed_strikes(spx_reach.points_below, "SPX") > 80, "the old -80 strikes reached 8 % of SPX"


def test_chained_pauses_keep_the_true_peak_so_close_all_fires_20_percent_below_it() -> None:
    """A NO_NEW pause ends with the peak re-based (trading resumes at HALVE); the high-water mark stays, so a
    later fall to -20 % of the TRUE peak closes everything even though it is only ~-11 % of the re-based one."""
    params = Params()
    day = datetime(2024, 1, 2, 10, 0)
    risk = RiskManager(None, params, day)
    risk.update_equity(250_000.0, day)
    risk.update_equity(212_000.0, day + timedelta(days=1))  # -15.2 %: NO_NEW
    assert risk.breaker is BreakerLevel.NO_NEW
    risk.update_equity(212_000.0, day + timedelta(days=16))  # the pause is over: HALVE, peak re-based
    assert risk.breaker is BreakerLevel.HALVE and risk.record.peak_equity < 250_000.0
    assert risk.record.high_water_mark == 250_000.0
    risk.update_equity(199_000.0, day + timedelta(days=17))  # -20.4 % of the true peak
    assert risk.close_all_required()


def test_a_crash_before_the_entry_reached_the_broker_does_not_cost_the_cycle() -> None:
    """The process dies right after LT112's entry was written ahead, before the broker got its orders: the
    restart finds no order and no fill, so the attempt came to nothing and LT112 enters again inside its
    window the same day, once (it lost the whole month before)."""

    def deployment(crash_plan: CrashPlan) -> Deployment:
        return Deployment(seed=7, start=date(2024, 1, 2), end=date(2024, 1, 5), crash_plan=crash_plan)

    counting = deployment(CrashPlan()).run()
    (before_send,) = [
        p
        for p in counting.crash_plan.points
        if p.kind == "order-submit" and p.detail.startswith("before lt112") and p.detail.endswith("-entry")
    ][:1]
    run = deployment(CrashPlan(crash_at=(before_send.number,))).run()
    assert run.runtime_error is None and [r.crash is not None for r in run.runs] == [True, False]
    lt112 = [p for p in run.engine.snapshot().positions.values() if p.strategy_id == "lt112"]
    assert [p.entry_time.date() for p in lt112] == [date(2024, 1, 3)]
