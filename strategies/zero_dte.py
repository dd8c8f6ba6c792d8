"""Friday 0DTE: a credit spread or an iron condor on options expiring today, entered at 10:30 ET ([F]).

The move from the session open picks the structure: above +0.5 % sell a call spread (fade the rally), below
-0.5 % sell a put spread, in between an iron condor. Shorts at ~20 delta (or a fixed distance from spot when
the data has no greeks), wings `width` points further out. Rule values and sources: params.py.

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

from datetime import date
from typing import Dict, List, Optional, Sequence, Tuple, Union

from core.params import Params
from core.ports import MarketView, OptionQuote
from core.records import PositionRecord, Right, StrategyStateRecord
from core.selection import Leg, NoPick, by_delta_or_fraction, net_price, points_away, side, structure_problem
from strategies.base import (
    OPTION_MULTIPLIER,
    REGULAR_CLOSE,
    EntryPlan,
    before_close,
    in_window,
    legs_total,
    position_pnl,
    units_for,
)

CALL_SPREAD = "call spread"
PUT_SPREAD = "put spread"
IRON_CONDOR = "iron condor"


class ZeroDteRules:
    strategy_id = "zero_dte"

    def __init__(self, params: Params) -> None:
        self.params = params
        self.enabled = params.zero_dte_enabled
        self.last_reason = ""  # why the last entry_plan call returned what it did (for the log)
        self.vol: Optional[float] = None  # VIX / 100 and the time to today's close, at the entry decision:
        self.years_left = 0.0  # the no-greeks delta estimate uses them

    # -- entry --------------------------------------------------------------------------------------------------

    def structure_for_move(self, move: float) -> str:
        """Which structure a move from the open asks for ([F]: fade; `zero_dte_fade_moves=False` follows)."""
        threshold = self.params.zero_dte_move_threshold
        if abs(move) <= threshold:
            return IRON_CONDOR
        up = move > 0
        sell_calls = up if self.params.zero_dte_fade_moves else not up
        return CALL_SPREAD if sell_calls else PUT_SPREAD

    def entry_plan(self, view: MarketView, state: StrategyStateRecord, size_factor: float) -> Optional[EntryPlan]:
        params = self.params
        now = view.now
        today = now.date()
        if not self.enabled:
            return self._skip("zero_dte disabled")
        if today.weekday() != params.zero_dte_weekday:
            return self._skip("not the 0DTE weekday")
        if not in_window(now, params.zero_dte_entry_time, params.zero_dte_entry_window_minutes):
            return self._skip("outside the entry window")
        if state.last_entry_day == today:
            return self._skip("already entered today")
        if size_factor <= 0:
            return self._skip("risk allows no new position")
        if params.zero_dte_min_vix > 0 and (view.vix is None or view.vix < params.zero_dte_min_vix):
            return self._skip(f"VIX {view.vix} below the floor {params.zero_dte_min_vix:g}")
        spot, session_open = view.price, view.open_price
        if spot is None or spot <= 0 or session_open is None or session_open <= 0:
            return self._skip("no underlying price or session open yet")
        kind = self.structure_for_move(spot / session_open - 1.0)
        self.vol = view.vix / 100.0 if view.vix is not None and view.vix > 0 else None
        close = before_close(view, REGULAR_CLOSE)
        self.years_left = max(60.0, (close - now).total_seconds()) / (365.0 * 24 * 3600)
        picked = self.select(view.chain(), spot, today, kind)
        if isinstance(picked, NoPick):
            return self._skip(f"{kind}: {picked.reason}")
        per_unit, widest = picked
        credit = -net_price(per_unit)
        margin = (widest - credit) * OPTION_MULTIPLIER  # defined risk: only one side of a condor can lose
        units = units_for(view.equity, params.zero_dte_bp_per_position, size_factor, margin, params.zero_dte_max_units)
        if units == 0:
            return self._skip(f"0 units (equity {view.equity:.0f}, risk per unit {margin:.0f})")
        credit_total = credit * OPTION_MULTIPLIER * units
        if credit < params.zero_dte_min_credit_width * widest:
            return self._skip(
                f"credit {credit:.2f} is below {params.zero_dte_min_credit_width:.0%} of the {widest:g}-point width"
            )
        strikes = tuple(sorted((quote.strike for quote, _ in per_unit), reverse=True))
        reason = f"{kind} {'/'.join(f'{s:g}' for s in strikes)} for {credit:.2f}"
        self.last_reason = reason
        return EntryPlan(
            strategy_id=self.strategy_id,
            legs=legs_total(per_unit, units),
            units=units,
            est_net_price=-credit,
            profit_target=params.zero_dte_profit_target * credit_total,
            max_loss=params.zero_dte_stop_credit_multiple * credit_total,
            expiry=today,
            strikes=strikes,
            reason=reason,
            credit=credit_total,
            credit_symbols=tuple(quote.symbol for quote, _ in per_unit),
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
        params = self.params
        options = side(quotes, today, right)
        direction = 1.0 if right == Right.CALL else -1.0
        short = by_delta_or_fraction(
            options,
            params.zero_dte_short_delta,
            spot,
            1.0 + direction * params.zero_dte_short_spot_distance,
            self.vol,
            self.years_left,
        )
        if isinstance(short, NoPick):
            return NoPick(f"short {right.name.lower()}: {short.reason}")
        long = points_away(options, short.strike, direction * params.zero_dte_width)
        if isinstance(long, NoPick):
            return NoPick(f"long {right.name.lower()}: {long.reason}")
        return short, long

    # -- exit ---------------------------------------------------------------------------------------------------

    def exit_reason(self, view: MarketView, position: PositionRecord) -> Optional[str]:
        params = self.params
        now = view.now
        if now.date() > position.expiry:
            return "past expiry"
        pnl = position_pnl(view, position)
        if pnl is not None:
            if position.profit_target > 0 and pnl >= position.profit_target:
                return f"profit target ({pnl:.0f} >= {position.profit_target:.0f})"
            if position.max_loss > 0 and -pnl >= position.max_loss:
                return f"stop (loss {-pnl:.0f} >= {position.max_loss:.0f})"
        if now.date() < position.expiry:
            return None  # the clock rules below are about the expiry day
        # measured from the session's actual close: on a 13:00 early close they fire three hours earlier
        deadline = before_close(view, params.zero_dte_deadline_time)
        time_stop = before_close(view, params.zero_dte_close_time)
        evaluation = before_close(view, params.zero_dte_evaluate_time)
        if now >= deadline:
            return f"hard deadline {deadline:%H:%M}"
        if now >= time_stop:
            return f"time stop {time_stop:%H:%M}"
        if now >= evaluation and pnl is not None and pnl <= 0:
            return f"{evaluation:%H:%M} evaluation: not in profit ({pnl:.0f})"
        return None

    def _skip(self, reason: str) -> Optional[EntryPlan]:
        """Record why there is no plan (for the log) and return None."""
        self.last_reason = reason
        return None
