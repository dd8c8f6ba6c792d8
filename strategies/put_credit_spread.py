"""Monthly put credit spread: sell a ~30-delta put about 45 days out, buy the put `width` points below it.

The well-known short-premium trade as tastytrade's research publishes it [T]: open at ~45 DTE, manage winners
at 50 % of the credit, close by 21 DTE whatever the P&L (the last weeks carry most of the gamma risk). It is
also the template's worked example of a strategy written against the one API (README, "Write your own
strategy"): one file, one registration line in strategies/__init__.py, nothing else.

Entry: once per calendar month, at the first entry window (11:00, for an hour) of a trading day on which the
strategy is flat; the expiry nearest 45 DTE (+-15 days: monthlies are ~30 days apart). Short put ~30 delta
(without greeks: the strike with that delta at VIX, or spot x 0.96), long put `width` points below. Refused
when the credit is under `min_credit_width` of the width (it cannot pay for its stop and costs).

Exits, first match wins, on the whole spread:
- profit target: P&L >= 50 % of the credit received [T];
- stop: loss >= `stop_credit_multiple` x the credit received (ours: a defined-risk spread has no stop in [T];
  a trader forking a template wants one);
- exit by DTE: at or below 21 days to expiry [T].
Target and stop are planned on the credit at mid and re-based by the engine on the credit actually received
(engine/facts.py `targets_from_fill`); `exit_reason` reads them from the position, never from parameters.
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
    position_pnl,
    stored_target_hit,
    units_for,
    vix_volatility,
)


@dataclass(frozen=True)
class PutCreditSpreadConfig(StrategyConfig):
    """The monthly put credit spread's rule values; config.json names them `put-credit-spread-<field>`."""

    PARAMETER_PREFIX: ClassVar[str] = "put-credit-spread"

    # ours: off by default, so the two strategies the template is about trade as they always did; the demo and
    # the crash drill switch it on (put-credit-spread-enabled=true), and so can config.json
    enabled: bool = False
    dte: int = 45  # [T] open at about 45 days to expiry
    dte_window: int = 15  # ours: monthlies are ~30 days apart, so one always lies within 45 +- 15
    entry_time: time = time(11, 0)  # ours: after the opening hour's wide spreads
    entry_window_minutes: int = 60  # ours: a missed bar still enters inside the hour
    short_put_delta: float = 0.30  # [T] sell the ~30-delta put
    short_put_spot_fraction: float = 0.96  # ours: no-greeks fallback, roughly a 30-delta put at 45 DTE, VIX ~15
    width_index_points: float = 50.0  # ours: 50 SPX points (5 SPY points), as wide as LT112's PDS
    min_credit_width: float = 0.20  # ours: [T] asks a third of the width; a fifth still pays for stop and costs
    profit_target: float = 0.50  # [T] manage winners at 50 % of the credit
    stop_credit_multiple: float = 1.0  # ours: close when the loss equals the credit received
    exit_dte: int = 21  # [T] close by 21 DTE
    bp_per_position: float = 0.03  # ours: a defined-risk spread; 3 % of the account per position
    max_units: int = 10  # safety cap per position (ours)

    def validate(self) -> None:
        require_each(self, ("dte", "entry_window_minutes"), lambda v: v > 0, "must be > 0")
        require_each(self, ("dte_window", "exit_dte"), lambda v: v >= 0, "must be >= 0")
        require(self, self.exit_dte < self.dte, "exit_dte", "must be below put-credit-spread-dte")
        opens = ("short_put_delta", "short_put_spot_fraction", "min_credit_width")
        require_each(self, opens, open_fraction, "must be between 0 and 1 (exclusive)")
        require(self, fraction(self.profit_target), "profit_target", "must be in (0, 1]")
        finite = ("width_index_points", "stop_credit_multiple")
        require_each(self, finite, positive_finite, "must be > 0 and finite")


class PutCreditSpread(Strategy[PutCreditSpreadConfig]):
    strategy_id = "put_credit_spread"
    config_type = PutCreditSpreadConfig
    max_contracts_per_unit = 1  # one short and one long put per unit

    @property
    def width(self) -> float:
        """Spread width in points of the traded underlying."""
        return self.config.width_index_points * self.market.scale

    def option_reach(self, spot: float) -> OptionReach:
        """Puts only, down to the long put below a short of half the target delta at a stressed volatility, the
        expiries the rule may pick (dte +- dte_window, 5 days more at the far end)."""
        config = self.config
        max_days = config.dte + config.dte_window + 5
        short = strike_for_delta(spot, config.short_put_delta / 2.0, Right.PUT, STRESS_VOL, max_days / 365.0)
        min_days = max(0, config.dte - config.dte_window)
        return OptionReach(max(0.0, spot - short) + self.width, 0.0, max_days, min_days, frozenset((Right.PUT,)))

    # -- entry --------------------------------------------------------------------------------------------------

    def entry_plan(self, view: MarketView, state: StrategyStateRecord, size_factor: float) -> Optional[EntryPlan]:
        config = self.config
        now = view.now
        if not self.enabled:
            return self.skip("put_credit_spread disabled", routine=True)
        if not in_window(now, config.entry_time, config.entry_window_minutes):
            return self.skip("outside the entry window", routine=True)
        last = entered_this_month(state, now)
        if last is not None:
            return self.skip(f"already entered this month on {last.isoformat()}", routine=True)
        if size_factor <= 0:
            return self.skip("risk allows no new position")
        spot = view.price
        if spot is None or spot <= 0:
            return self.skip("no underlying price")
        vol = vix_volatility(view)
        picked = self.select(view.chain(), spot, now.date(), vol)
        if isinstance(picked, NoPick):
            return self.skip(picked.reason)
        short_put, long_put = picked
        per_unit: Tuple[Leg, ...] = ((short_put, -1), (long_put, 1))
        credit = -net_price(per_unit)
        spread_width = short_put.strike - long_put.strike
        if credit < config.min_credit_width * spread_width:
            return self.skip(
                f"credit {credit:.2f} is below {config.min_credit_width:.0%} of the {spread_width:g} width"
            )
        risk_per_unit = (spread_width - credit) * OPTION_MULTIPLIER  # defined risk: the most one unit can lose
        units = units_for(view.equity, config.bp_per_position, size_factor, risk_per_unit, config.max_units)
        if units == 0:
            return self.skip(f"0 units (equity {view.equity:.0f}, risk per unit {risk_per_unit:.0f})")
        credit_total = credit * OPTION_MULTIPLIER * units
        strikes = (short_put.strike, long_put.strike)
        reason = f"put spread {short_put.expiry.isoformat()} {strikes[0]:g}/{strikes[1]:g} for {credit:.2f}"
        return self.planned(
            EntryPlan(
                strategy_id=self.strategy_id,
                legs=legs_total(per_unit, units),
                units=units,
                est_net_price=-credit,
                profit_target=config.profit_target * credit_total,
                max_loss=config.stop_credit_multiple * credit_total,
                expiry=short_put.expiry,
                strikes=strikes,
                reason=reason,
                credit=credit_total,
                credit_symbols=(short_put.symbol, long_put.symbol),
            )
        )

    def select(
        self, chain: Sequence[OptionQuote], spot: float, today: date, vol: Optional[float]
    ) -> Union[Tuple[OptionQuote, OptionQuote], NoPick]:
        """(short put, long put) of one expiry, validated; or why the chain cannot give them."""
        config = self.config
        expiry = expiry_nearest(chain, today, config.dte, config.dte_window)
        if isinstance(expiry, NoPick):
            return expiry
        puts = side(chain, expiry, Right.PUT)
        years = max(1, (expiry - today).days) / 365.0
        short_put = by_delta_or_fraction(puts, config.short_put_delta, spot, config.short_put_spot_fraction, vol, years)
        if isinstance(short_put, NoPick):
            return NoPick(f"short put: {short_put.reason}")
        long_put = points_away(puts, short_put.strike, -self.width)
        if isinstance(long_put, NoPick):
            return NoPick(f"long put: {long_put.reason}")
        problem = structure_problem(((short_put, -1), (long_put, 1)), require_credit=True)
        if problem is not None:
            return NoPick(problem)
        return short_put, long_put

    # -- exit ---------------------------------------------------------------------------------------------------

    def exit_reason(self, view: MarketView, position: PositionRecord) -> Optional[str]:
        days_left = (position.expiry - view.now.date()).days
        pnl = position_pnl(view, position)
        hit = stored_target_hit(pnl, position)
        if hit is not None:
            return hit
        if days_left <= self.config.exit_dte:
            return f"exit by DTE ({days_left} <= {self.config.exit_dte})"
        return None


STRATEGY = PutCreditSpread
