"""Portfolio risk: drawdown circuit breakers, loss streaks, daily loss, correlation and BP by VIX.

Everything that must survive a restart lives in the `RiskRecord` (peak, breaker level and since when,
streak, today's loss, folded position ids); a RiskManager rebuilt from the record decides exactly like the
one that wrote it. Pure: time and equity come in as arguments. The record object is replaced only when one
of its facts changes (every method that can change it says so in its return value), so the engine writes it
at once on a change and never on a bar that changed nothing. The live drawdown is not a stored fact: it
follows from the peak and the equity of the last update.

Circuit breakers ([F], thresholds in params.py), from the PERSISTED peak equity:
- drawdown >= 10 % -> HALVE (new positions at half size), >= 15 % -> NO_NEW, >= 20 % -> CLOSE_ALL (close
  everything and pause). A level rises as soon as the drawdown reaches it. NO_NEW stops new entries only: [F]'s
  "and close losers" is not done, for the reasons in docs/strategy-rules.md (Drawdown circuit breakers).
- A level relaxes to NONE only when the drawdown is back under `risk_relax_drawdown` (5 %): no flapping
  around a threshold. CLOSE_ALL never relaxes before its pause is over.
- NO_NEW and CLOSE_ALL also end when their pause has passed (14 days): trading resumes at HALVE and the
  peak is re-based so that the account stands exactly at the HALVE threshold. Without this, an account
  that may not trade could never recover its drawdown. From there a ~5.5 % gain returns it to full size and
  a further ~5.6 % loss stops it again.

Also ours (no source gives them): from `risk_max_consecutive_losses` losses in a row new positions of that
strategy are halved until it wins; once a strategy's realised loss today reaches `risk_daily_loss_limit` of
equity it makes no new entry until the next trading day. Both are kept per strategy (`strategy_losses`):
0DTE stops never halve or stop LT112.

Kill switch (ours; parameters in core/params.py): tripped by the `kill-switch` parameter (at start) or, with
`kill-switch-on-close-all` (the default), whenever the CLOSE_ALL breaker fires. Tripped, it refuses every new
entry (`entries_allowed` False, `size_factor` 0) whatever the breakers do, also after the CLOSE_ALL pause is
over; exits and protection are not affected. It is stored in the risk record with the value `kill-switch-reset`
had when it tripped; it is reset only when a person starts the algorithm with `kill-switch-reset` set to any
other value. A reset never lifts a breaker: a CLOSE_ALL pause still runs its course. `kill-switch` still true at a
reset trips it again at once (with the new token): set it false as well.

Correlation ([F] groups, kept simple): SPY/QQQ/IWM/DIA are group A2 (limit 3), ES-family futures and
SPX/SPXW are A1 (limit 2), any other underlying is its own group with limit 2. The score is, over groups,
the largest (open positions / limit); at 1.0 a group is full and no entry is allowed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Dict, Mapping, Optional, Sequence, Tuple

from core.params import Params
from core.records import (
    BreakerLevel,
    DrawdownPoint,
    PositionRecord,
    PositionStatus,
    RiskDaysRecord,
    RiskRecord,
    StrategyLosses,
)

_A1 = ("A1", 2)
_A2 = ("A2", 3)
CORRELATION_GROUPS: Mapping[str, Tuple[str, int]] = {
    **{ticker: _A1 for ticker in ("ES", "MES", "NQ", "MNQ", "RTY", "M2K", "YM", "MYM", "SPX", "SPXW")},
    **{ticker: _A2 for ticker in ("SPY", "QQQ", "IWM", "DIA")},
}
_UNKNOWN_GROUP_LIMIT = 2
_THRESHOLD_SLACK = 1e-9

_RANK = {BreakerLevel.NONE: 0, BreakerLevel.HALVE: 1, BreakerLevel.NO_NEW: 2, BreakerLevel.CLOSE_ALL: 3}


def correlation_group(underlying: str) -> Tuple[str, int]:
    return CORRELATION_GROUPS.get(underlying, (underlying, _UNKNOWN_GROUP_LIMIT))


def underlying_of(position: PositionRecord) -> str:
    """The underlying of a position, read from its first contract key ("SPY-20240119-P-402.5")."""
    if not position.contracts:
        return ""
    return position.contracts[0].symbol.rsplit("-", 3)[0]


def correlation_score(underlyings: Sequence[str]) -> float:
    """Max over correlation groups of (open positions in the group / the group's limit); 0 when flat."""
    counts: Dict[str, int] = {}
    limits: Dict[str, int] = {}
    for underlying in underlyings:
        group, limit = correlation_group(underlying)
        counts[group] = counts.get(group, 0) + 1
        limits[group] = limit
    return max((counts[group] / limits[group] for group in counts), default=0.0)


def new_risk_record(now: datetime) -> RiskRecord:
    return RiskRecord(
        peak_equity=0.0,
        consecutive_losses=0,
        daily_loss=0.0,
        daily_loss_day=None,
        correlation_score=0.0,
        breaker=BreakerLevel.NONE,
        breaker_since=None,
        applied_position_ids=(),
        updated_at=now,
    )


class RiskManager:
    def __init__(self, record: Optional[RiskRecord], params: Params, now: datetime) -> None:
        self._params = params
        self._record = record if record is not None else new_risk_record(now)
        self._equity: Optional[float] = None  # of the last update_equity (None: none since the start)
        self._store(self._kill_switch_at_start(now), now)  # the record changes only when the switch does

    @property
    def drawdown(self) -> float:
        """The drawdown at the last update (0 before the first): a live value, never stored."""
        return _drawdown(self._record.peak_equity, self._equity) if self._equity is not None else 0.0

    @property
    def record(self) -> RiskRecord:
        return self._record

    @property
    def breaker(self) -> BreakerLevel:
        return self._record.breaker

    # -- kill switch --------------------------------------------------------------------------------------------

    @property
    def kill_switch_tripped(self) -> bool:
        return self._record.kill_switch_since is not None

    def kill_switch_status(self) -> str:
        """One line for the log and the alerts: "" when not tripped, else when, why and how to reset it."""
        record = self._record
        if record.kill_switch_since is None:
            return ""
        return (
            f"KILL SWITCH tripped {record.kill_switch_since:%Y-%m-%d %H:%M} ({record.kill_switch_reason}): no new "
            f"entries until a person sets parameter kill-switch-reset to a value other than "
            f"{record.kill_switch_token!r} and restarts"
        )

    def _kill_switch_at_start(self, now: datetime) -> RiskRecord:
        """Apply the parameters once, at construction: a changed reset token resets, `kill-switch` trips."""
        record, params = self._record, self._params
        if record.kill_switch_since is not None and params.kill_switch_reset != record.kill_switch_token:
            record = replace(record, kill_switch_since=None, kill_switch_reason="", kill_switch_token="")
        if params.kill_switch and record.kill_switch_since is None:
            record = self._tripped(record, "parameter kill-switch is true", now)
        return record

    def _tripped(self, record: RiskRecord, reason: str, now: datetime) -> RiskRecord:
        return replace(
            record, kill_switch_since=now, kill_switch_reason=reason, kill_switch_token=self._params.kill_switch_reset
        )

    # -- equity and breakers ------------------------------------------------------------------------------------

    def level_for(self, drawdown: float) -> BreakerLevel:
        params = self._params
        drawdown += _THRESHOLD_SLACK  # 1 - 90_000 / 100_000 is 0.09999999999999998: that IS a 10 % drawdown
        if drawdown >= params.risk_close_all_drawdown:
            return BreakerLevel.CLOSE_ALL
        if drawdown >= params.risk_no_new_drawdown:
            return BreakerLevel.NO_NEW
        if drawdown >= params.risk_halve_drawdown:
            return BreakerLevel.HALVE
        return BreakerLevel.NONE

    def pause_days(self, level: BreakerLevel) -> Optional[int]:
        if level == BreakerLevel.CLOSE_ALL:
            return self._params.risk_close_all_pause_days
        if level == BreakerLevel.NO_NEW:
            return self._params.risk_no_new_pause_days
        return None

    def update_equity(self, equity: float, now: datetime) -> bool:
        """Fold in the current equity. True when the breaker level changed: save the record AT ONCE (and
        flush). Any other change (a new peak, a new day's loss reset) replaces `record` too: save it at once."""
        if not math.isfinite(equity):
            return False
        self._equity = equity
        current = self._record
        peak = max(current.peak_equity, equity)
        high_water = max(current.high_water_mark, peak)
        level, since = current.breaker, current.breaker_since
        drawdown = _drawdown(peak, equity)
        implied = self.level_for(drawdown)
        below_true_peak = _drawdown(high_water, equity) + _THRESHOLD_SLACK >= self._params.risk_close_all_drawdown
        if below_true_peak:
            implied = BreakerLevel.CLOSE_ALL  # of the TRUE peak: a re-based peak never moves this line
        if _RANK[implied] > _RANK[level]:
            level, since = implied, now
        elif level != BreakerLevel.NONE:
            pause = self.pause_days(level)
            paused_until = since + timedelta(days=pause) if pause is not None and since is not None else None
            if level == BreakerLevel.CLOSE_ALL and paused_until is not None and now < paused_until:
                pass  # [F]: the break is taken in full, whatever equity does meanwhile
            elif drawdown < self._params.risk_relax_drawdown:
                level, since = BreakerLevel.NONE, None
            elif paused_until is not None and now >= paused_until and below_true_peak:
                level, since = BreakerLevel.CLOSE_ALL, now  # still 20 % under the true peak: a new break
            elif paused_until is not None and now >= paused_until:
                # the pause is over: resume at half size from a peak that puts the account at the HALVE line
                peak = equity / (1.0 - self._params.risk_halve_drawdown) if equity > 0 else peak
                level, since = BreakerLevel.HALVE, now
        daily_loss, daily_day = current.daily_loss, current.daily_loss_day
        if daily_day != now.date():
            daily_loss, daily_day = 0.0, now.date()  # a new trading day starts with no realised loss
        new_break = level == BreakerLevel.CLOSE_ALL and (level, since) != (current.breaker, current.breaker_since)
        trip = new_break and self._params.kill_switch_on_close_all and current.kill_switch_since is None
        if not trip and (peak, high_water, level, since, daily_loss, daily_day) == (
            current.peak_equity,
            current.high_water_mark,
            current.breaker,
            current.breaker_since,
            current.daily_loss,
            current.daily_loss_day,
        ):
            return False  # the common bar: nothing to build, nothing to write
        updated = replace(
            current,
            peak_equity=peak,
            high_water_mark=high_water,
            breaker=level,
            breaker_since=since,
            daily_loss=daily_loss,
            daily_loss_day=daily_day,
        )
        if trip:
            reason = f"CLOSE_ALL breaker at {_drawdown(high_water, equity):.1%} below the high-water mark"
            updated = self._tripped(updated, reason, now)
        self._store(updated, now)
        return level != current.breaker

    def end_of_day(self, day: date, equity: float) -> Optional[DrawdownPoint]:
        """The day's closing drawdown point (research; the engine files it in the month's RiskDaysRecord).
        None for an unusable equity. The risk record itself does not change."""
        if not math.isfinite(equity):
            return None
        peak = max(self._record.peak_equity, equity)
        return DrawdownPoint(day=day, equity=equity, drawdown=_drawdown(peak, equity))

    # -- closed positions ---------------------------------------------------------------------------------------

    def on_position_closed(self, position: PositionRecord, now: datetime) -> bool:
        """Fold a closed position into the streak and the daily loss, once per position id. True when the
        record changed (False: not closed yet, or already folded in)."""
        current = self._record
        if position.status != PositionStatus.CLOSED or position.position_id in current.applied_position_ids:
            return False
        pnl = position.realized_pnl if position.realized_pnl is not None else 0.0
        streak = current.consecutive_losses + 1 if pnl < 0 else 0
        closed_day = position.exit_time.date() if position.exit_time is not None else now.date()
        daily_loss, daily_day = current.daily_loss, current.daily_loss_day
        if daily_day is None or closed_day > daily_day:
            daily_loss, daily_day = 0.0, closed_day
        if pnl < 0 and closed_day == daily_day:
            daily_loss += -pnl  # a loss from an earlier day (folded late, after a restart) is not today's
        applied = (*current.applied_position_ids, position.position_id)[-self._params.risk_history_limit :]
        updated = replace(
            current,
            consecutive_losses=streak,
            daily_loss=daily_loss,
            daily_loss_day=daily_day,
            applied_position_ids=applied,
            strategy_losses=_with_losses(current.strategy_losses, position.strategy_id, pnl, closed_day),
        )
        return self._store(updated, now)

    def losses_of(self, strategy_id: str) -> StrategyLosses:
        """The strategy's own streak and daily loss (nothing yet: zeros)."""
        for losses in self._record.strategy_losses:
            if losses.strategy_id == strategy_id:
                return losses
        return StrategyLosses(strategy_id, 0, 0.0, None)

    def update_correlation(self, open_positions: Sequence[PositionRecord], now: datetime) -> bool:
        """Recompute the correlation score from the open positions. True when it changed."""
        underlyings = [underlying_of(p) for p in open_positions if p.status != PositionStatus.CLOSED]
        return self._store(replace(self._record, correlation_score=correlation_score(underlyings)), now)

    # -- decisions ----------------------------------------------------------------------------------------------

    def entries_allowed(self, vix: Optional[float], strategy_id: str = "") -> bool:
        """May a new position be opened? The kill switch, the breaker, the correlation limit and today's realised
        loss decide:
        the strategy's own loss when a strategy is named (another strategy's losses never stop it), all
        strategies' together when not (start-up planning). VIX changes how much BP may be used
        (max_bp_fraction), not whether to trade ([F]: any level)."""
        record = self._record
        if record.breaker in (BreakerLevel.NO_NEW, BreakerLevel.CLOSE_ALL) or record.kill_switch_since is not None:
            return False
        if record.correlation_score >= 1.0:
            return False
        equity = self._equity if self._equity is not None else record.peak_equity
        if strategy_id:
            own = self.losses_of(strategy_id)
            lost = own.daily_loss if own.daily_loss_day == record.daily_loss_day else 0.0
        else:
            lost = record.daily_loss
        return not (equity > 0 and lost >= self._params.risk_daily_loss_limit * equity)

    def size_factor(self, strategy_id: str = "") -> float:
        """1.0, 0.5 under HALVE (or the strategy's own loss streak), 0.0 under NO_NEW / CLOSE_ALL or a tripped kill
        switch. Without a strategy, the streak of all strategies together counts."""
        breaker = self._record.breaker
        if breaker in (BreakerLevel.NO_NEW, BreakerLevel.CLOSE_ALL) or self._record.kill_switch_since is not None:
            return 0.0
        factor = 0.5 if breaker == BreakerLevel.HALVE else 1.0
        streak = self.losses_of(strategy_id).consecutive_losses if strategy_id else self._record.consecutive_losses
        if streak >= self._params.risk_max_consecutive_losses:
            factor = min(factor, 0.5)
        return factor

    def close_all_required(self) -> bool:
        return self._record.breaker == BreakerLevel.CLOSE_ALL

    def max_bp_fraction(self, vix: Optional[float]) -> float:
        """Maximum share of buying power in use, by VIX regime ([F] table), never above 1 - reserve (20 %).
        Unknown VIX: the conservative default."""
        params = self._params
        ceiling = 1.0 - params.risk_bp_reserve
        if vix is None or not math.isfinite(vix):
            return min(params.risk_bp_unknown_vix, ceiling)
        for upper_bound, fraction in params.risk_bp_by_vix:
            if vix < upper_bound:
                return min(fraction, ceiling)
        return min(params.risk_bp_by_vix[-1][1], ceiling)

    # -- internals ----------------------------------------------------------------------------------------------

    def _store(self, updated: RiskRecord, now: datetime) -> bool:
        # updated_at moves only with a real change, so an unchanged record is never written again
        if updated == self._record:
            return False
        self._record = replace(updated, updated_at=now)
        return True


def _with_losses(
    table: Tuple[StrategyLosses, ...], strategy_id: str, pnl: float, closed_day: date
) -> Tuple[StrategyLosses, ...]:
    """The per-strategy table with one more closed position of `strategy_id` folded in (sorted by id)."""
    rows = {row.strategy_id: row for row in table}
    own = rows.get(strategy_id, StrategyLosses(strategy_id, 0, 0.0, None))
    streak = own.consecutive_losses + 1 if pnl < 0 else 0
    daily, day = own.daily_loss, own.daily_loss_day
    if day is None or closed_day > day:
        daily, day = 0.0, closed_day
    if pnl < 0 and closed_day == day:
        daily += -pnl
    rows[strategy_id] = StrategyLosses(strategy_id, streak, daily, day)
    return tuple(rows[key] for key in sorted(rows))


def with_point(chunk: Optional[RiskDaysRecord], point: DrawdownPoint) -> RiskDaysRecord:
    """The month's chunk with `point` filed in (one point per day, oldest first). A chunk of another month,
    the same month a year earlier in the ring, is replaced."""
    month = point.day.isoformat()[:7]
    kept = [p for p in chunk.points if p.day != point.day] if chunk is not None and chunk.month == month else []
    return RiskDaysRecord(month, tuple(sorted([*kept, point], key=lambda p: p.day)))


def _drawdown(peak: float, equity: float) -> float:
    if peak <= 0:
        return 0.0
    return max(0.0, 1.0 - equity / peak)
