"""Friday 0DTE: a credit spread or an iron condor on options expiring today, entered at 10:30 ET ([F]).

The move from the session open picks the structure: above +0.5 % sell a call spread (fade the rally), below
-0.5 % sell a put spread, in between an iron condor. Shorts at ~20 delta (or a fixed distance from spot when
the data has no greeks), wings `width` points further out. Rule values and sources: `ZeroDteConfig` below
(source keys: core/config.py).

Exits, first match wins:
- the position's expiry is past (it should have settled; close whatever is left);
- profit target: P&L >= 50 % of the credit; stop: loss >= stop multiple x credit (plan.profit_target /
  plan.max_loss, stored on the position);
- hard deadline 15:30, time stop 15:00 (every clock time measured from the session's actual close: on a 13:00
  early close they are 12:30 and 12:00, and the evaluation 11:30);
- the 14:30 evaluation: a position that is not in profit is closed then ([F] says "evaluate at 14:30"; we
  read it as "cut losers, let winners run to 15:00").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple, Union

from core.params import fraction, open_fraction, positive_finite, require, require_each
from core.ports import MarketView, OptionQuote
from core.records import PositionRecord, Right, StrategyStateRecord
from core.selection import Leg, NoPick, by_delta_or_fraction, net_price, points_away, side, structure_problem
from strategies.base import (
    BOTH_RIGHTS,
    OPTION_MULTIPLIER,
    REGULAR_CLOSE,
    EntryPlan,
    OptionReach,
    Strategy,
    StrategyConfig,
    before_close,
    in_window,
    legs_total,
    position_pnl,
    stored_target_hit,
    units_for,
    vix_volatility,
)

CALL_SPREAD = "call spread"
PUT_SPREAD = "put spread"
IRON_CONDOR = "iron condor"


@dataclass(frozen=True)
class ZeroDteConfig(StrategyConfig):
    """The Friday 0DTE's rule values (defaults [F]); config.json names them `zero-dte-<field>`."""

    PARAMETER_PREFIX: ClassVar[str] = "zero-dte"

    enabled: bool = True  # zero-dte-enabled
    weekday: int = 4  # [F] Fridays only (Monday = 0)
    entry_time: time = time(10, 30)  # [F] enter at 10:30 ET, never earlier
    entry_window_minutes: int = 15  # ours: 10:30-10:45 so a missed bar still enters
    move_threshold: float = 0.005  # [F] +-0.5 % from the open picks the structure
    fade_moves: bool = True  # [F] fade: up -> call spread, down -> put spread ([R] inverts it: not chosen)
    short_delta: float = 0.20  # [F] 15-25 delta, never 30+; [R] 0.16 not chosen
    short_spot_distance: float = 0.0075  # ours, no-delta fallback: ~20 delta 0DTE distance at VIX ~15
    width_index_points: float = 30.0  # [F] 30-point wings (3 SPY points)
    profit_target: float = 0.50  # [F] 50 % of the credit (the credit received at the fill)
    # ours: refuse a structure whose credit is under 5 % of its wing width (3-wide SPY: 0.15; less cannot pay for
    # its stop, spread and fees)
    min_credit_width: float = 0.05
    # [F] says both "2x credit" and "100 % loss: close to prevent 2x". Chosen: a loss of 1x the credit
    # (buy back at 2x the credit received), which is both texts read as a buy-back price. 2.0 = the other reading.
    stop_credit_multiple: float = 1.0
    evaluate_time: time = time(14, 30)  # [F] evaluate at 14:30: a losing position is closed then (ours)
    close_time: time = time(15, 0)  # [F] close by 15:00
    deadline_time: time = time(15, 30)  # [F] hard deadline 15:30
    min_vix: float = 0.0  # [F] any VIX level; [R] 22 not chosen
    bp_per_position: float = 0.02  # [F] about 2 % BP per spread
    max_units: int = 25  # safety cap per position (ours)

    def validate(self) -> None:
        require(self, self.entry_window_minutes > 0, "entry_window_minutes", "must be > 0")
        require(self, 0 <= self.weekday <= 6, "weekday", "must be 0 (Monday) to 6")
        open_fractions = ("short_delta", "short_spot_distance", "move_threshold", "min_credit_width")
        require_each(self, open_fractions, open_fraction, "must be between 0 and 1 (exclusive)")
        require(self, fraction(self.profit_target), "profit_target", "must be in (0, 1]")
        finite = ("width_index_points", "stop_credit_multiple")
        require_each(self, finite, positive_finite, "must be > 0 and finite")
        require(
            self,
            self.entry_time < self.evaluate_time < self.close_time,
            "evaluate_time",
            "must lie between zero-dte-entry-time and zero-dte-close-time",
        )
        require(self, self.close_time <= self.deadline_time, "deadline_time", "must not be before zero-dte-close-time")
        require(self, self.min_vix >= 0, "min_vix", "must be >= 0")


class ZeroDte(Strategy[ZeroDteConfig]):
    strategy_id = "zero_dte"
    config_type = ZeroDteConfig
    max_contracts_per_unit = 1  # credit spreads and iron condors: one contract per leg per unit

    vol: Optional[float] = None  # VIX / 100 and the time to today's close, at the entry decision:
    years_left = 0.0  # the no-greeks delta estimate uses them

    @property
    def width(self) -> float:
        """Wing width in points of the traded underlying."""
        return self.config.width_index_points * self.market.scale

    def option_reach(self, spot: float) -> OptionReach:
        """Today's expiry only, the ~20-delta shorts (within ~3 % of spot on a 0DTE) and their wings, puts and
        calls (a condor sells both sides)."""
        reach = spot * 0.03 + self.width
        return OptionReach(points_below=reach, points_above=reach, min_days=0, max_days=0, rights=BOTH_RIGHTS)

    # -- entry --------------------------------------------------------------------------------------------------

    def structure_for_move(self, move: float) -> str:
        """Which structure a move from the open asks for ([F]: fade; `zero_dte_fade_moves=False` follows)."""
        threshold = self.config.move_threshold
        if abs(move) <= threshold:
            return IRON_CONDOR
        up = move > 0
        sell_calls = up if self.config.fade_moves else not up
        return CALL_SPREAD if sell_calls else PUT_SPREAD

    def entry_plan(self, view: MarketView, state: StrategyStateRecord, size_factor: float) -> Optional[EntryPlan]:
        config = self.config
        now = view.now
        today = now.date()
        if not self.enabled:
            return self.skip("zero_dte disabled", routine=True)
        if today.weekday() != config.weekday:
            return self.skip("not the 0DTE weekday", routine=True)
        if not in_window(now, config.entry_time, config.entry_window_minutes):
            return self.skip("outside the entry window", routine=True)
        if state.last_entry_day == today:
            return self.skip("already entered today", routine=True)
        if size_factor <= 0:
            return self.skip("risk allows no new position")
        if config.min_vix > 0 and (view.vix is None or view.vix < config.min_vix):
            return self.skip(f"VIX {view.vix} below the floor {config.min_vix:g}")
        spot, session_open = view.price, view.open_price
        if spot is None or spot <= 0 or session_open is None or session_open <= 0:
            return self.skip("no underlying price or session open yet")
        kind = self.structure_for_move(spot / session_open - 1.0)
        self.vol = vix_volatility(view)
        close = before_close(view, REGULAR_CLOSE)
        self.years_left = max(60.0, (close - now).total_seconds()) / (365.0 * 24 * 3600)
        picked = self.select(view.chain(), spot, today, kind)
        if isinstance(picked, NoPick):
            return self.skip(f"{kind}: {picked.reason}")
        per_unit, widest = picked
        credit = -net_price(per_unit)
        margin = (widest - credit) * OPTION_MULTIPLIER  # defined risk: only one side of a condor can lose
        units = units_for(view.equity, config.bp_per_position, size_factor, margin, config.max_units)
        if units == 0:
            return self.skip(f"0 units (equity {view.equity:.0f}, risk per unit {margin:.0f})")
        credit_total = credit * OPTION_MULTIPLIER * units
        if credit < config.min_credit_width * widest:
            return self.skip(
                f"credit {credit:.2f} is below {config.min_credit_width:.0%} of the {widest:g}-point width"
            )
        strikes = tuple(sorted((quote.strike for quote, _ in per_unit), reverse=True))
        reason = f"{kind} {'/'.join(f'{s:g}' for s in strikes)} for {credit:.2f}"
        return self.planned(
            EntryPlan(
                strategy_id=self.strategy_id,
                legs=legs_total(per_unit, units),
                units=units,
                est_net_price=-credit,
                profit_target=config.profit_target * credit_total,
                max_loss=config.stop_credit_multiple * credit_total,
                expiry=today,
                strikes=strikes,
                reason=reason,
                credit=credit_total,
                credit_symbols=tuple(quote.symbol for quote, _ in per_unit),
            )
        )

    def select(
        self, chain: Sequence[OptionQuote], spot: float, today: date, kind: str
    ) -> Union[Tuple[Tuple[Leg, ...], float], NoPick]:
        """The legs per unit and the widest wing, validated; or why the chain cannot give them."""
        todays = [quote for quote in chain if quote.expiry == today]  # 0DTE: expiry is today, nothing else
        if not todays:
            return NoPick("no contract expires today")
        legs: List[Leg] = []
        widths: List[float] = []
        short_strikes: Dict[Right, float] = {}
        rights = {CALL_SPREAD: (Right.CALL,), PUT_SPREAD: (Right.PUT,), IRON_CONDOR: (Right.PUT, Right.CALL)}[kind]
        for right in rights:
            spread = self._vertical(todays, spot, today, right)
            if isinstance(spread, NoPick):
                return spread
            short, long = spread
            legs += [(short, -1), (long, 1)]
            widths.append(abs(long.strike - short.strike))
            short_strikes[right] = short.strike
        if kind == IRON_CONDOR and not short_strikes[Right.PUT] < short_strikes[Right.CALL]:
            return NoPick("condor short put is not below the short call")
        problem = structure_problem(legs, require_credit=True)
        if problem is not None:
            return NoPick(problem)
        return tuple(legs), max(widths)

    def _vertical(
        self, quotes: Sequence[OptionQuote], spot: float, today: date, right: Right
    ) -> Union[Tuple[OptionQuote, OptionQuote], NoPick]:
        """(short, long) of a credit spread: short ~target delta, long `width` points further out."""
        config = self.config
        options = side(quotes, today, right)
        direction = 1.0 if right == Right.CALL else -1.0
        short = by_delta_or_fraction(
            options,
            config.short_delta,
            spot,
            1.0 + direction * config.short_spot_distance,
            self.vol,
            self.years_left,
        )
        if isinstance(short, NoPick):
            return NoPick(f"short {right.name.lower()}: {short.reason}")
        long = points_away(options, short.strike, direction * self.width)
        if isinstance(long, NoPick):
            return NoPick(f"long {right.name.lower()}: {long.reason}")
        return short, long

    # -- exit ---------------------------------------------------------------------------------------------------

    def exit_reason(self, view: MarketView, position: PositionRecord) -> Optional[str]:
        config = self.config
        now = view.now
        if now.date() > position.expiry:
            return "past expiry"
        pnl = position_pnl(view, position)
        hit = stored_target_hit(pnl, position)
        if hit is not None:
            return hit
        if now.date() < position.expiry:
            return None  # the clock rules below are about the expiry day
        # measured from the session's actual close: on a 13:00 early close they fire three hours earlier
        deadline = before_close(view, config.deadline_time)
        time_stop = before_close(view, config.close_time)
        evaluation = before_close(view, config.evaluate_time)
        if now >= deadline:
            return f"hard deadline {deadline:%H:%M}"
        if now >= time_stop:
            return f"time stop {time_stop:%H:%M}"
        if now >= evaluation and pnl is not None and pnl <= 0:
            return f"{evaluation:%H:%M} evaluation: not in profit ({pnl:.0f})"
        return None


STRATEGY = ZeroDte
