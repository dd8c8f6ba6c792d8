"""LT112: the 1-1-2 put structure at ~120 DTE, entered on the first Wednesday of the month.

Per unit: +1 long put (~25 delta, or spot x 0.93), -1 short put `width` points below it (together the put
debit spread, PDS), -2 naked puts (~5 delta, or spot x 0.88). Rule values and their sources: params.py.

Exits (whole structure, see the simplification noted in params.py):
- profit target on the naked puts: NP P&L >= target fraction x NP credit [N];
- stop on the naked puts: NP loss >= min(2 x NP credit, 2 % of net liq at entry) [N];
- exit by DTE: at or below `lt112_exit_dte` days to the nearest expiry [F].
The plan carries the NP credit at mid, the NP contracts, target fraction x credit, stop multiple x credit and
the 2 %-of-net-liq cap; when the entry fills the engine stores the credit actually received on the position
and re-bases target and stop on it (engine_facts.targets_from_fill). `exit_reason` reads only those stored
facts, never a parameter, so a position keeps the targets it was opened with after a restart.
"""

from __future__ import annotations

from datetime import date
from typing import Optional, Sequence, Tuple, Union

from core.params import Params
from core.ports import MarketView, OptionQuote
from core.records import PositionRecord, Right, StrategyStateRecord
from core.selection import (
    Leg,
    NoPick,
    by_delta_or_fraction,
    expiry_nearest,
    net_price,
    points_away,
    side,
    strictly_descending,
    structure_problem,
)
from strategies.base import OPTION_MULTIPLIER, EntryPlan, in_window, legs_total, units_for, usable

WEDNESDAY = 2


def is_first_wednesday(day: date) -> bool:
    """The first Wednesday of a month is the Wednesday among its first seven days ([F] entry day)."""
    return day.weekday() == WEDNESDAY and day.day <= 7


class LT112Rules:
    strategy_id = "lt112"

    def __init__(self, params: Params) -> None:
        self.params = params
        self.enabled = params.lt112_enabled
        self.last_reason = ""  # why the last entry_plan call returned what it did (for the log)
        self.vol: Optional[float] = None  # VIX / 100 at the entry decision: the no-greeks delta estimate uses it

    # -- entry --------------------------------------------------------------------------------------------------

    def entry_plan(self, view: MarketView, state: StrategyStateRecord, size_factor: float) -> Optional[EntryPlan]:
        params = self.params
        now = view.now
        if not self.enabled:
            return self._skip("lt112 disabled")
        if not is_first_wednesday(now.date()):
            return self._skip("not the first Wednesday of the month")
        if not in_window(now, params.lt112_entry_time, params.lt112_entry_window_minutes):
            return self._skip("outside the entry window")
        last = state.last_entry_day
        if last is not None and (last.year, last.month) == (now.year, now.month):
            return self._skip(f"already entered this cycle on {last.isoformat()}")
        if size_factor <= 0:
            return self._skip("risk allows no new position")
        spot = view.price
        if spot is None or spot <= 0:
            return self._skip("no underlying price")
        self.vol = view.vix / 100.0 if view.vix is not None and view.vix > 0 else None
        picked = self.select(view.chain(), spot, now.date())
        if isinstance(picked, NoPick):
            return self._skip(picked.reason)
        long_put, short_put, naked_put = picked
        per_unit: Tuple[Leg, ...] = ((long_put, 1), (short_put, -1), (naked_put, -2))
        margin = self.margin_per_unit(spot, per_unit)
        units = units_for(view.equity, params.lt112_bp_per_position, size_factor, margin, params.lt112_max_units)
        if units == 0:
            return self._skip(f"0 units (equity {view.equity:.0f}, margin per unit {margin:.0f})")
        naked_credit = 2 * naked_put.mid * OPTION_MULTIPLIER * units
        strikes = (long_put.strike, short_put.strike, naked_put.strike)
        reason = f"1-1-2 {long_put.expiry.isoformat()} puts {strikes[0]:g}/{strikes[1]:g}/2x{strikes[2]:g}"
        self.last_reason = reason
        return EntryPlan(
            strategy_id=self.strategy_id,
            legs=legs_total(per_unit, units),
            units=units,
            est_net_price=net_price(per_unit),
            profit_target=params.lt112_np_profit_target * naked_credit,
            max_loss=params.lt112_np_stop_credit_multiple * naked_credit,
            expiry=long_put.expiry,
            strikes=strikes,
            reason=reason,
            credit=naked_credit,
            credit_symbols=(naked_put.symbol,),
            stop_cap=params.lt112_np_stop_net_liq_fraction * view.equity,
        )

    def select(
        self, chain: Sequence[OptionQuote], spot: float, today: date
    ) -> Union[Tuple[OptionQuote, OptionQuote, OptionQuote], NoPick]:
        """(long put, short put, naked put) of one expiry, validated; or why the chain cannot give them."""
        params = self.params
        expiry = expiry_nearest(chain, today, params.lt112_dte, params.lt112_dte_window)
        if isinstance(expiry, NoPick):
            return expiry
        puts = side(chain, expiry, Right.PUT)
        vol, years = self.vol, max(1, (expiry - today).days) / 365.0
        long_put = by_delta_or_fraction(
            puts, params.lt112_long_put_delta, spot, params.lt112_long_put_spot_fraction, vol, years
        )
        if isinstance(long_put, NoPick):
            return NoPick(f"long put: {long_put.reason}")
        short_put = points_away(puts, long_put.strike, -params.lt112_width)
        if isinstance(short_put, NoPick):
            return NoPick(f"short put: {short_put.reason}")
        naked_put = by_delta_or_fraction(
            puts, params.lt112_naked_put_delta, spot, params.lt112_naked_put_spot_fraction, vol, years
        )
        if isinstance(naked_put, NoPick):
            return NoPick(f"naked put: {naked_put.reason}")
        if not strictly_descending((long_put.strike, short_put.strike, naked_put.strike)):
            strikes = f"{long_put.strike:g}/{short_put.strike:g}/{naked_put.strike:g}"
            return NoPick(f"strikes not ordered long > short > naked: {strikes}")
        legs = ((long_put, 1), (short_put, -1), (naked_put, -2))
        problem = structure_problem(legs, require_credit=params.lt112_require_net_credit)
        if problem is not None:
            return NoPick(problem)
        return long_put, short_put, naked_put

    def margin_per_unit(self, spot: float, per_unit: Sequence[Leg]) -> float:
        """Estimate of what the broker (LEAN's option margin model) holds for one unit: each NP its premium plus
        the naked rate of the underlying traded (20 % of spot for equity options, 15 % for index options, less the
        out-of-the-money amount, at least 10 % of the strike), plus the PDS debit. The PDS's short put is covered
        by its long put, so it adds no requirement of its own."""
        params = self.params
        naked_requirement = 0.0
        pds_debit = 0.0
        for quote, quantity in per_unit:
            if quantity < -1:  # the naked puts
                out_of_money = max(0.0, spot - quote.strike)
                each = quote.mid + max(
                    params.naked_margin_fraction * spot - out_of_money,
                    params.lt112_naked_margin_floor * quote.strike,
                )
                naked_requirement += -quantity * each
            else:
                pds_debit += quantity * quote.mid
        return (naked_requirement + max(0.0, pds_debit)) * OPTION_MULTIPLIER

    # -- exit ---------------------------------------------------------------------------------------------------

    def exit_reason(self, view: MarketView, position: PositionRecord) -> Optional[str]:
        params = self.params
        days_left = (position.expiry - view.now.date()).days
        naked_pnl = self.naked_put_pnl(view, position)
        if naked_pnl is not None and position.profit_target > 0:
            if naked_pnl >= position.profit_target:
                return f"naked puts reached the profit target ({naked_pnl:.0f} >= {position.profit_target:.0f})"
            if position.max_loss > 0 and -naked_pnl >= position.max_loss:
                return f"naked puts hit the stop (loss {-naked_pnl:.0f} >= {position.max_loss:.0f})"
        if days_left <= params.lt112_exit_dte:
            return f"exit by DTE ({days_left} <= {params.lt112_exit_dte})"
        return None

    def naked_put_pnl(self, view: MarketView, position: PositionRecord) -> Optional[float]:
        """P&L of the naked puts in account currency: the credit received for them at entry (stored on the
        position when it opened) minus the cost to buy them back now. None when a naked put has no usable quote
        or the credit is not known (a position from before v4 or adopted): its DTE rule still applies."""
        credit = position.credit_received
        if credit is None or credit <= 0:
            return None
        shorts = [contract for contract in position.contracts if contract.quantity < 0]
        if not shorts:
            return None
        lowest = min(contract.strike for contract in shorts)
        cost_now = 0.0
        for contract in shorts:
            if contract.strike != lowest or contract.right != Right.PUT:
                continue
            quote = view.quote(contract.symbol)
            if quote is None or not usable(quote):
                return None
            cost_now += -contract.quantity * quote.mid * OPTION_MULTIPLIER
        return credit - cost_now

    def _skip(self, reason: str) -> Optional[EntryPlan]:
        self.last_reason = reason
        return None
