"""LT112: the 1-1-2 put structure at ~120 DTE, entered on the first Wednesday of the month.

Per unit: +1 long put (~25 delta, or spot x 0.93), -1 short put `width` points below it (together the put
debit spread, PDS), -2 naked puts (~5 delta, or spot x 0.88). Rule values and their sources: `LT112Config`
below (source keys: core/params.py).

Simplification: [N] and [F] manage the put debit spread (PDS) and the naked puts (NPs) of the LT112 as two
trades. This template closes the whole 1-1-2 together when the NP rule (target, stop or DTE) fires.

Exits (whole structure, see the simplification above):
- profit target on the naked puts: NP P&L >= target fraction x NP credit [N];
- stop on the naked puts: NP loss >= min(2 x NP credit, 2 % of net liq at entry) [N];
- exit by DTE: at or below `exit_dte` days to the nearest expiry [F].
The plan carries the NP credit at mid, the NP contracts, target fraction x credit, stop multiple x credit and
the 2 %-of-net-liq cap, and the naked strike as a per-position fact; when the entry fills the engine stores the
credit actually received on the position and re-bases target and stop on it (engine/facts.py
`targets_from_fill`). `exit_reason` reads only those stored facts, never a parameter that may have changed
since, except the DTE exit, which is a calendar rule of the strategy, not a figure of the trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from typing import ClassVar, Optional, Sequence, Tuple, Union

from core.params import fraction, open_fraction, positive_finite, require, require_each
from core.ports import MarketView, OptionQuote
from core.records import PositionRecord, Right, StrategyStateRecord
from core.selection import (
    STRESS_VOL,
    Leg,
    NoPick,
    by_delta_or_fraction,
    expiry_nearest,
    net_price,
    points_away,
    side,
    strictly_descending,
    strike_for_delta,
    structure_problem,
)
from strategies.base import (
    OPTION_MULTIPLIER,
    EntryPlan,
    OptionReach,
    Strategy,
    StrategyConfig,
    entered_this_month,
    in_window,
    legs_total,
    units_for,
    usable,
    vix_volatility,
)

WEDNESDAY = 2
NAKED_STRIKE = "naked_strike"  # per-position fact: the strike of the two naked puts


def is_first_wednesday(day: date) -> bool:
    """The first Wednesday of a month is the Wednesday among its first seven days ([F] entry day)."""
    return day.weekday() == WEDNESDAY and day.day <= 7


@dataclass(frozen=True)
class LT112Config(StrategyConfig):
    """LT112's rule values (defaults [N]); config.json names them `lt112-<field>` (e.g. `lt112-exit-dte`)."""

    PARAMETER_PREFIX: ClassVar[str] = "lt112"

    enabled: bool = True  # lt112-enabled
    dte: int = 120  # [N][F] 120 DTE; [R] 112, 45 elsewhere in [R]: not chosen
    dte_window: int = 20  # nearest listed expiry within 120 +- 20 days (ours: monthlies are ~30 days apart)
    entry_time: time = time(10, 0)  # [R] Wednesday 10:00; [F] gives the day only
    entry_window_minutes: int = 60  # ours: a missed bar still enters inside the hour
    long_put_delta: float = 0.25  # [N] long put about 22-25 delta
    naked_put_delta: float = 0.05  # [N][F] naked puts about 5 delta
    long_put_spot_fraction: float = 0.93  # [F] percent rule, used when the chain has no deltas
    naked_put_spot_fraction: float = 0.88  # [F] percent rule, used when the chain has no deltas
    width_index_points: float = 50.0  # [N][F] PDS 50 ES points wide (5 SPY points)
    require_net_credit: bool = True  # [P][N] the 1-1-2 is opened for a net credit
    np_profit_target: float = 0.95  # [N] 95 % of the NP credit; [F] 90 % (about day 30): set 0.90
    np_stop_credit_multiple: float = 2.0  # [N] NP price at 3x the credit = a loss of 2x the credit
    np_stop_net_liq_fraction: float = 0.02  # [N] or an NP loss of 2 % of net liq, whichever first
    exit_dte: int = 30  # [F] NPs closed at 30 DTE ([N] silent; [R] 21 DTE not chosen)
    bp_per_position: float = 0.06  # [F] LT112 6 % of the account per position (ES)
    max_units: int = 10  # safety cap per position (ours)

    def validate(self) -> None:
        require_each(self, ("dte", "entry_window_minutes"), lambda v: v > 0, "must be > 0")
        require_each(self, ("dte_window", "exit_dte"), lambda v: v >= 0, "must be >= 0")
        require(self, self.exit_dte < self.dte, "exit_dte", "must be below lt112-dte")
        open_fractions = (
            "long_put_delta",
            "naked_put_delta",
            "long_put_spot_fraction",
            "naked_put_spot_fraction",
            "np_stop_net_liq_fraction",
        )
        require_each(self, open_fractions, open_fraction, "must be between 0 and 1 (exclusive)")
        require(self, fraction(self.np_profit_target), "np_profit_target", "must be in (0, 1]")
        require(
            self,
            self.naked_put_delta < self.long_put_delta,
            "naked_put_delta",
            "must be below lt112-long-put-delta (naked puts sit further out)",
        )
        require(
            self,
            self.naked_put_spot_fraction < self.long_put_spot_fraction,
            "naked_put_spot_fraction",
            "must be below lt112-long-put-spot-fraction",
        )
        finite = ("width_index_points", "np_stop_credit_multiple")
        require_each(self, finite, positive_finite, "must be > 0 and finite")


class LT112(Strategy[LT112Config]):
    strategy_id = "lt112"
    config_type = LT112Config
    max_contracts_per_unit = 2  # the 1-1-2: two naked puts per unit

    vol: Optional[float] = None  # VIX / 100 at the entry decision: the no-greeks delta estimate uses it

    @property
    def width(self) -> float:
        """PDS width in points of the traded underlying."""
        return self.config.width_index_points * self.market.scale

    def option_reach(self, spot: float) -> OptionReach:
        """Puts only, down to the put with half the naked-put delta at a stressed volatility, the expiries the
        rule may pick (dte +- dte_window; 10 days more at the far end, where a selection made a day earlier
        would otherwise miss one). A 5-delta put at 120 DTE with skew sits 20-30 % below spot."""
        config = self.config
        max_days = config.dte + config.dte_window + 10
        lowest = strike_for_delta(spot, config.naked_put_delta / 2.0, Right.PUT, STRESS_VOL, max_days / 365.0)
        min_days = max(0, config.dte - config.dte_window)
        return OptionReach(max(0.0, spot - lowest), 0.0, max_days, min_days, frozenset((Right.PUT,)))

    # -- entry --------------------------------------------------------------------------------------------------

    def entry_plan(self, view: MarketView, state: StrategyStateRecord, size_factor: float) -> Optional[EntryPlan]:
        config = self.config
        now = view.now
        if not self.enabled:
            return self.skip("lt112 disabled", routine=True)
        if not is_first_wednesday(now.date()):
            return self.skip("not the first Wednesday of the month", routine=True)
        if not in_window(now, config.entry_time, config.entry_window_minutes):
            return self.skip("outside the entry window", routine=True)
        last = entered_this_month(state, now)
        if last is not None:
            return self.skip(f"already entered this cycle on {last.isoformat()}", routine=True)
        if size_factor <= 0:
            return self.skip("risk allows no new position")
        spot = view.price
        if spot is None or spot <= 0:
            return self.skip("no underlying price")
        self.vol = vix_volatility(view)
        picked = self.select(view.chain(), spot, now.date())
        if isinstance(picked, NoPick):
            return self.skip(picked.reason)
        long_put, short_put, naked_put = picked
        per_unit: Tuple[Leg, ...] = ((long_put, 1), (short_put, -1), (naked_put, -2))
        margin = self.margin_per_unit(spot, per_unit)
        units = units_for(view.equity, config.bp_per_position, size_factor, margin, config.max_units)
        if units == 0:
            return self.skip(f"0 units (equity {view.equity:.0f}, margin per unit {margin:.0f})")
        naked_credit = 2 * naked_put.mid * OPTION_MULTIPLIER * units
        strikes = (long_put.strike, short_put.strike, naked_put.strike)
        reason = f"1-1-2 {long_put.expiry.isoformat()} puts {strikes[0]:g}/{strikes[1]:g}/2x{strikes[2]:g}"
        return self.planned(
            EntryPlan(
                strategy_id=self.strategy_id,
                legs=legs_total(per_unit, units),
                units=units,
                est_net_price=net_price(per_unit),
                profit_target=config.np_profit_target * naked_credit,
                max_loss=config.np_stop_credit_multiple * naked_credit,
                expiry=long_put.expiry,
                strikes=strikes,
                reason=reason,
                credit=naked_credit,
                credit_symbols=(naked_put.symbol,),
                stop_cap=config.np_stop_net_liq_fraction * view.equity,
                facts={NAKED_STRIKE: naked_put.strike},
            )
        )

    def select(
        self, chain: Sequence[OptionQuote], spot: float, today: date
    ) -> Union[Tuple[OptionQuote, OptionQuote, OptionQuote], NoPick]:
        """(long put, short put, naked put) of one expiry, validated; or why the chain cannot give them."""
        config = self.config
        expiry = expiry_nearest(chain, today, config.dte, config.dte_window)
        if isinstance(expiry, NoPick):
            return expiry
        puts = side(chain, expiry, Right.PUT)
        vol, years = self.vol, max(1, (expiry - today).days) / 365.0
        long_put = by_delta_or_fraction(puts, config.long_put_delta, spot, config.long_put_spot_fraction, vol, years)
        if isinstance(long_put, NoPick):
            return NoPick(f"long put: {long_put.reason}")
        short_put = points_away(puts, long_put.strike, -self.width)
        if isinstance(short_put, NoPick):
            return NoPick(f"short put: {short_put.reason}")
        naked_put = by_delta_or_fraction(puts, config.naked_put_delta, spot, config.naked_put_spot_fraction, vol, years)
        if isinstance(naked_put, NoPick):
            return NoPick(f"naked put: {naked_put.reason}")
        if not strictly_descending((long_put.strike, short_put.strike, naked_put.strike)):
            strikes = f"{long_put.strike:g}/{short_put.strike:g}/{naked_put.strike:g}"
            return NoPick(f"strikes not ordered long > short > naked: {strikes}")
        legs = ((long_put, 1), (short_put, -1), (naked_put, -2))
        problem = structure_problem(legs, require_credit=config.require_net_credit)
        if problem is not None:
            return NoPick(problem)
        return long_put, short_put, naked_put

    def margin_per_unit(self, spot: float, per_unit: Sequence[Leg]) -> float:
        """Estimate of what the broker (LEAN's option margin model) holds for one unit: each NP its premium plus
        the naked rate of the underlying traded (20 % of spot for equity options, 15 % for index options, less the
        out-of-the-money amount, at least 10 % of the strike), plus the PDS debit. The PDS's short put is covered
        by its long put, so it adds no requirement of its own."""
        market = self.market
        naked_requirement = 0.0
        pds_debit = 0.0
        for quote, quantity in per_unit:
            if quantity < -1:  # the naked puts
                naked_requirement += -quantity * market.naked_margin(quote.strike, spot, premium=quote.mid)
            else:
                pds_debit += quantity * quote.mid
        return (naked_requirement + max(0.0, pds_debit)) * OPTION_MULTIPLIER

    # -- exit ---------------------------------------------------------------------------------------------------

    def exit_reason(self, view: MarketView, position: PositionRecord) -> Optional[str]:
        config = self.config
        days_left = (position.expiry - view.now.date()).days
        naked_pnl = self.naked_put_pnl(view, position)
        if naked_pnl is not None and position.profit_target > 0:
            if naked_pnl >= position.profit_target:
                return f"naked puts reached the profit target ({naked_pnl:.0f} >= {position.profit_target:.0f})"
            if position.max_loss > 0 and -naked_pnl >= position.max_loss:
                return f"naked puts hit the stop (loss {-naked_pnl:.0f} >= {position.max_loss:.0f})"
        if days_left <= config.exit_dte:
            return f"exit by DTE ({days_left} <= {config.exit_dte})"
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
        # the naked strike the entry stored; a position from before v5 stored none: its lowest short strike
        naked = self.fact(position, NAKED_STRIKE)
        naked = naked if naked is not None else min(contract.strike for contract in shorts)
        cost_now = 0.0
        for contract in shorts:
            if contract.strike != naked or contract.right != Right.PUT:
                continue
            quote = view.quote(contract.symbol)
            if quote is None or not usable(quote):
                return None
            cost_now += -contract.quantity * quote.mid * OPTION_MULTIPLIER
        return credit - cost_now


STRATEGY = LT112
