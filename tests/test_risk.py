from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import List, Optional, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.params import Params
from core.records import (
    BreakerLevel,
    ContractRecord,
    DrawdownPoint,
    PositionRecord,
    PositionStatus,
    Right,
    RiskDaysRecord,
    RiskRecord,
)
from engine.risk import (
    RiskManager,
    correlation_group,
    correlation_score,
    underlying_of,
    with_point,
)
from persistence.codec import canonical_json, from_body, to_body
from persistence.validation import RecordLimits, record_check

T0 = datetime(2024, 1, 2, 9, 31)
PARAMS = Params()
BREAKERS_ONLY = Params(kill_switch_on_close_all=False)
B = BreakerLevel


def manager(equity: float = 100_000.0) -> RiskManager:
    risk = RiskManager(None, PARAMS, T0)
    risk.update_equity(equity, T0)
    return risk


def closed(position_id: str, pnl: Optional[float], exit_time: datetime, underlying: str = "SPY") -> PositionRecord:
    return PositionRecord(
        position_id=position_id,
        strategy_id="zero_dte",
        entry_group_id=f"g-{position_id}",
        entry_time=exit_time - timedelta(hours=1),
        entry_price=-0.6,
        contracts=(ContractRecord(f"{underlying}-20240105-P-468", Right.PUT, 468.0, date(2024, 1, 5), -1),),
        expiry=date(2024, 1, 5),
        strikes=(468.0,),
        entry_vix=15.0,
        profit_target=30.0,
        max_loss=60.0,
        params_hash="h",
        status=PositionStatus.CLOSED,
        exit_time=exit_time,
        realized_pnl=pnl,
    )


def still_open(position: PositionRecord) -> PositionRecord:
    return replace(position, status=PositionStatus.OPEN, exit_time=None, realized_pnl=None)


def through_json(record: RiskRecord) -> RiskRecord:
    return from_body(RiskRecord, json.loads(canonical_json(to_body(record))))


# -- drawdown and breakers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("equity", "level", "factor", "allowed", "close_all"),
    [
        (95_000.0, B.NONE, 1.0, True, False),
        (90_000.0, B.HALVE, 0.5, True, False),
        (85_000.0, B.NO_NEW, 0.0, False, False),
        (80_000.0, B.CLOSE_ALL, 0.0, False, True),
    ],
)
def test_breaker_levels(equity: float, level: BreakerLevel, factor: float, allowed: bool, close_all: bool) -> None:
    risk = manager()
    changed = risk.update_equity(equity, T0 + timedelta(hours=1))
    assert changed is (level != B.NONE)  # a level change must be saved at once
    assert risk.breaker == level
    assert risk.size_factor() == factor
    assert risk.entries_allowed(15.0) is allowed
    assert risk.close_all_required() is close_all
    assert risk.drawdown == pytest.approx(1 - equity / 100_000.0)


def test_drawdown_is_measured_from_the_persisted_peak() -> None:
    risk = manager()
    risk.update_equity(120_000.0, T0 + timedelta(hours=1))
    rebuilt = RiskManager(through_json(risk.record), PARAMS, T0 + timedelta(days=3))
    rebuilt.update_equity(106_000.0, T0 + timedelta(days=3))  # 11.7 % below the 120k peak, above the start
    assert rebuilt.record.peak_equity == 120_000.0
    assert rebuilt.breaker == B.HALVE


def test_breakers_only_relax_below_the_threshold() -> None:
    risk = manager()
    risk.update_equity(84_000.0, T0 + timedelta(hours=1))
    assert risk.breaker == B.NO_NEW
    for equity in (88_000.0, 91_000.0, 94_000.0, 94_900.0):  # recovering but drawdown still >= 5 %
        assert risk.update_equity(equity, T0 + timedelta(hours=2)) is False
        assert risk.breaker == B.NO_NEW
    assert risk.update_equity(95_100.0, T0 + timedelta(hours=3)) is True
    assert risk.breaker == B.NONE and risk.record.breaker_since is None


def test_close_all_keeps_its_pause_then_resumes_at_half_size() -> None:
    """The breaker on its own ([F]'s break ends by itself): with the kill switch left out of it."""
    risk = RiskManager(None, BREAKERS_ONLY, T0)
    risk.update_equity(100_000.0, T0)
    hit = T0 + timedelta(days=1)
    risk.update_equity(79_000.0, hit)
    assert risk.breaker == B.CLOSE_ALL and risk.record.breaker_since == hit
    risk.update_equity(99_000.0, hit + timedelta(days=13))  # recovered, but the 14-day break is not over
    assert risk.breaker == B.CLOSE_ALL
    risk.update_equity(79_000.0, hit + timedelta(days=13, hours=1))
    # the break is over but the account is still 21 % under its TRUE peak: a new break, never a lowered line
    assert risk.update_equity(79_000.0, hit + timedelta(days=14)) is False or risk.breaker == B.CLOSE_ALL
    assert risk.breaker == B.CLOSE_ALL and risk.record.breaker_since == hit + timedelta(days=14)
    # back above the close-all line when the next break ends: resume at half size
    assert risk.update_equity(88_000.0, hit + timedelta(days=28)) is True
    assert risk.breaker == B.HALVE and risk.size_factor() == 0.5
    assert risk.drawdown == pytest.approx(PARAMS.risk_halve_drawdown)  # re-based to the HALVE line
    assert risk.entries_allowed(None)
    # a further loss of ~5.6 % stops new trades again; a gain of ~5.6 % restores full size
    again = RiskManager(risk.record, BREAKERS_ONLY, hit)
    again.update_equity(88_000.0 * 0.94, hit + timedelta(days=29))
    assert again.breaker == B.NO_NEW
    risk.update_equity(88_000.0 * 1.06, hit + timedelta(days=29))
    assert risk.breaker == B.NONE


def test_no_new_ends_after_its_pause() -> None:
    risk = manager()
    risk.update_equity(84_000.0, T0)
    risk.update_equity(84_000.0, T0 + timedelta(days=PARAMS.risk_no_new_pause_days))
    assert risk.breaker == B.HALVE


def test_unchanged_equity_changes_nothing() -> None:
    risk = manager()
    before = risk.record
    assert risk.update_equity(100_000.0, T0 + timedelta(minutes=5)) is False
    assert risk.record == before  # updated_at moves only with a real change: no needless write
    assert risk.update_equity(math.nan, T0) is False


# -- closed positions -----------------------------------------------------------------------------------------------


def test_on_position_closed_is_idempotent_and_counts_streaks() -> None:
    risk = manager()
    day = datetime(2024, 1, 5, 15, 0)
    risk.update_equity(100_000.0, day)
    assert risk.on_position_closed(closed("a", -500.0, day), day) is True
    assert risk.on_position_closed(closed("a", -500.0, day), day) is False  # replayed after a restart
    assert risk.record.consecutive_losses == 1 and risk.record.daily_loss == 500.0
    risk.on_position_closed(closed("b", -400.0, day), day)
    risk.on_position_closed(closed("c", -300.0, day), day)
    assert risk.record.consecutive_losses == 3
    assert risk.size_factor() == 0.5  # a losing streak halves new positions
    risk.on_position_closed(closed("d", 200.0, day), day)
    assert risk.record.consecutive_losses == 0 and risk.size_factor() == 1.0
    open_position = still_open(closed("e", None, day))
    assert risk.on_position_closed(open_position, day) is False


def test_daily_loss_blocks_entries_until_the_next_day() -> None:
    risk = manager()
    friday = datetime(2024, 1, 5, 12, 0)
    risk.update_equity(100_000.0, friday)
    risk.on_position_closed(closed("a", -3_100.0, friday), friday)
    risk.update_equity(97_000.0, friday + timedelta(minutes=5))
    assert risk.entries_allowed(15.0) is False
    monday = datetime(2024, 1, 8, 9, 31)
    risk.update_equity(97_000.0, monday)
    assert risk.record.daily_loss == 0.0 and risk.record.daily_loss_day == monday.date()
    assert risk.entries_allowed(15.0) is True
    # a Friday loss folded late (after a restart on Monday) does not count as Monday's
    risk.on_position_closed(closed("b", -5_000.0, friday), monday)
    assert risk.record.daily_loss == 0.0 and risk.record.consecutive_losses == 2


def test_applied_ids_are_bounded() -> None:
    params = Params(risk_history_limit=5)
    risk = RiskManager(None, params, T0)
    for index in range(12):
        risk.on_position_closed(closed(f"p{index}", 10.0, T0), T0)
    assert risk.record.applied_position_ids == tuple(f"p{index}" for index in range(7, 12))


# -- correlation and BP ---------------------------------------------------------------------------------------------


def test_correlation_groups_and_score() -> None:
    assert correlation_group("SPY") == ("A2", 3) and correlation_group("SPX") == ("A1", 2)
    assert correlation_score([]) == 0.0
    assert correlation_score(["SPY", "QQQ"]) == pytest.approx(2 / 3)
    assert correlation_score(["SPY", "SPX", "SPXW"]) == pytest.approx(1.0)
    risk = manager()
    day = T0 + timedelta(hours=1)
    opened = [
        PositionRecord(**{**closed(f"p{i}", None, day).__dict__, "status": PositionStatus.OPEN}) for i in range(3)
    ]
    assert underlying_of(opened[0]) == "SPY"
    assert risk.update_correlation(opened[:2], day) is True
    assert risk.entries_allowed(15.0) is True
    risk.update_correlation(opened, day)
    assert risk.record.correlation_score == pytest.approx(1.0)
    assert risk.entries_allowed(15.0) is False


@pytest.mark.parametrize(
    ("vix", "fraction"),
    [(None, 0.40), (11.0, 0.40), (13.0, 0.60), (17.9, 0.60), (20.0, 0.75), (27.0, 0.50), (30.0, 0.80), (80.0, 0.80)],
)
def test_bp_fraction_by_vix(vix: Optional[float], fraction: float) -> None:
    assert manager().max_bp_fraction(vix) == pytest.approx(fraction)


def test_bp_never_eats_the_reserve() -> None:
    greedy = Params(risk_bp_by_vix=((20.0, 0.95), (math.inf, 1.0)), risk_bp_reserve=0.20)
    risk = RiskManager(None, greedy, T0)
    assert risk.max_bp_fraction(15.0) == pytest.approx(0.80)
    assert risk.max_bp_fraction(40.0) == pytest.approx(0.80)


def test_end_of_day_points_are_one_per_day_in_a_ring_of_monthly_chunks() -> None:
    risk = RiskManager(None, PARAMS, T0)
    risk.update_equity(100_000.0, T0)
    chunk = None
    for offset in range(5):
        point = risk.end_of_day(date(2024, 1, 2) + timedelta(days=offset), 100_000.0 - 1_000.0 * offset)
        assert point is not None
        chunk = with_point(chunk, point)
    again = risk.end_of_day(date(2024, 1, 6), 90_000.0)  # same day again replaces the point
    assert again is not None and risk.end_of_day(date(2024, 1, 7), math.nan) is None
    chunk = with_point(chunk, again)
    assert chunk.record_name == "risk-days-01" and chunk.month == "2024-01"
    assert [p.day for p in chunk.points] == [date(2024, 1, 2) + timedelta(days=d) for d in range(5)]
    assert chunk.points[-1].drawdown == pytest.approx(0.10)
    # the same month a year later replaces the chunk (same record name): the ring holds one year
    later = with_point(chunk, DrawdownPoint(date(2025, 1, 2), 1.0, 0.0))
    assert later.record_name == chunk.record_name and [p.day for p in later.points] == [date(2025, 1, 2)]
    check = record_check(RecordLimits())
    assert check(chunk) is None and check(later) is None
    assert "another month" in (check(RiskDaysRecord("2024-02", chunk.points)) or "")
    assert "not a YYYY-MM" in (check(RiskDaysRecord("2024-1x", ())) or "")
    assert "one per day" in (check(RiskDaysRecord("2024-01", chunk.points[::-1])) or "")


def test_a_bar_that_changes_nothing_keeps_the_same_record_object() -> None:
    risk = manager()
    risk.update_equity(100_000.0, T0)
    before = risk.record
    for equity in (99_000.0, 97_000.0, 99_999.0):
        assert risk.update_equity(equity, T0 + timedelta(minutes=1)) is False
        assert risk.record is before
    risk.update_equity(100_001.0, T0 + timedelta(minutes=2))  # a new peak is a new fact
    assert risk.record is not before and risk.record.peak_equity == 100_001.0


# -- restart equivalence --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Equity:
    value: float


@dataclass(frozen=True)
class Close:
    pnl: float


@dataclass(frozen=True)
class EndOfDay:
    value: float


Step = Union[Equity, Close, EndOfDay]
steps = st.one_of(
    st.builds(Equity, st.floats(min_value=60_000.0, max_value=130_000.0)),
    st.builds(Close, st.floats(min_value=-4_000.0, max_value=3_000.0)),
    st.builds(EndOfDay, st.floats(min_value=60_000.0, max_value=130_000.0)),
)


def replay(risk: RiskManager, step: Step, index: int, now: datetime) -> tuple[object, ...]:
    if isinstance(step, Equity):
        return ("equity", risk.update_equity(step.value, now))
    if isinstance(step, Close):
        position = closed(f"p{index}", step.pnl, now)
        first = risk.on_position_closed(position, now)
        again = risk.on_position_closed(position, now)  # duplicate delivery is a no-op
        return ("close", first, again)
    return ("eod", risk.end_of_day(now.date(), step.value))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(steps, min_size=1, max_size=40), st.data())
def test_a_manager_rebuilt_from_its_record_behaves_identically(plan: List[Step], data: st.DataObject) -> None:
    restart_at = data.draw(st.integers(min_value=0, max_value=len(plan)))
    continuous = manager()
    restarted = manager()
    last_equity = 100_000.0
    for index, step in enumerate(plan):
        now = T0 + timedelta(days=index // 2, hours=index % 2)  # 40 steps span the 14-day pause
        if index == restart_at:
            restarted = RiskManager(through_json(restarted.record), PARAMS, now)
            # the live equity is not stored: a restarted engine folds in the broker's equity before deciding
            # anything, at a bar the running engine sees as well
            assert continuous.update_equity(last_equity, now) == restarted.update_equity(last_equity, now)
        if isinstance(step, Equity):
            last_equity = step.value
        out_a = replay(continuous, step, index, now)
        out_b = replay(restarted, step, index, now)
        assert out_a == out_b
        assert continuous.record == restarted.record
        for vix in (None, 12.0, 26.0):
            assert continuous.entries_allowed(vix) == restarted.entries_allowed(vix)
            assert continuous.max_bp_fraction(vix) == restarted.max_bp_fraction(vix)
        assert continuous.size_factor() == restarted.size_factor()
        assert continuous.close_all_required() == restarted.close_all_required()
