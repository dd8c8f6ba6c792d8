"""The one strategy API: `Strategy`, the base every strategy subclasses, its config base, and the helpers they
share (mark-to-market, sizing, the session clock).

A strategy is one file (see README, "Write your own strategy"): a frozen config dataclass that subclasses
`StrategyConfig` (its rule values, each citing its source, read from config.json as `<prefix>-<field>`), and a
`Strategy` subclass that overrides the hooks it needs. It is registered by one line in strategies/__init__.py.
The engine calls every hook through one safe-call wrapper: a hook that raises is logged and treated as "no
opinion" (no entry, no exit, the conservative default), never a crash.

Invariants the engine relies on:
- hooks are pure decisions: they read the market view, the strategy's state record and the position record,
  and never place orders or touch storage;
- `exit_reason` reads only what the position stored when it opened (targets, credit, `facts`), never a
  parameter that may have changed since, so a restart keeps the rules the position was opened with;
- `entry_plan` legs carry their TOTAL signed quantity, at most `max_units x max_contracts_per_unit` per leg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, Callable, ClassVar, FrozenSet, Generic, Iterable, Mapping, Optional, Sequence, Tuple, TypeVar

from core.contracts import OPTION_MULTIPLIER, REGULAR_CLOSE
from core.params import ParameterGetter, Params, fraction, read_config, require
from core.ports import LegSpec, MarketView, OptionQuote
from core.records import PositionRecord, Right, StrategyStateRecord
from core.selection import STRIKE_STEP, listed_strikes


@dataclass(frozen=True)
class EntryPlan:
    strategy_id: str
    legs: Tuple[LegSpec, ...]  # TOTAL signed quantity per leg (= per-unit quantity x units)
    units: int
    est_net_price: float  # per unit from mids; negative = credit
    profit_target: float  # account currency, whole position, positive
    max_loss: float  # account currency, whole position, positive (the stop)
    expiry: date  # nearest expiry among the legs
    strikes: Tuple[float, ...]
    reason: str
    # the credit (at mid, whole position, positive) the targets were computed from, the contracts it comes from,
    # and an absolute cap of the stop: stored with the entry so the targets follow the credit actually received
    credit: Optional[float] = None
    credit_symbols: Tuple[str, ...] = ()
    stop_cap: Optional[float] = None
    # the strategy's own per-position facts (name -> number), stored on the entry group before its orders and on
    # the position when it opens; read back with Strategy.fact
    facts: Mapping[str, float] = field(default_factory=dict)


BOTH_RIGHTS: FrozenSet[Right] = frozenset((Right.PUT, Right.CALL))


@dataclass(frozen=True)
class OptionReach:
    """What the option subscription must list for a strategy's rules: strikes `points_below` / `points_above` the
    underlying price (in the underlying's points), expiries `min_days` to `max_days` away and the `rights` the
    rules trade. main.py subscribes the union (UniverseReach). The defaults of the added fields (`min_days` 0,
    both rights) keep a strategy that sets only the first three as wide as before."""

    points_below: float = 0.0
    points_above: float = 0.0
    max_days: int = 0
    min_days: int = 0
    rights: FrozenSet[Right] = BOTH_RIGHTS

    def holds(self, right: Right, days: int, distance: Optional[float], slack: float) -> bool:
        """Is a contract `days` to expiry, `distance` = strike - underlying price (None: price unknown, not
        judged), inside this reach widened by `slack` points on each side?"""
        if right not in self.rights or not self.min_days <= days <= self.max_days:
            return False
        return distance is None or -(self.points_below + slack) <= distance <= self.points_above + slack


@dataclass(frozen=True)
class UniverseReach:
    """The union of the enabled strategies' reaches: what main.py's option filter keeps.

    Coarse bounds for LEAN's own filters (`strikes_below`/`strikes_above` count listed strikes from the one
    nearest the price, as OptionFilterUniverse.Strikes does; `min_days`/`max_days` for Expiration), then `keeps`
    picks the contracts inside at least one reach. Invariant: every contract a single reach holds passes the
    coarse bounds' day range, and `slack` (one listed strike) matches the extra strike the coarse count keeps."""

    reaches: Tuple[OptionReach, ...]
    underlying: str

    @staticmethod
    def of(reaches: Sequence[OptionReach], underlying: str) -> UniverseReach:
        """No reach at all (no strategy enabled) subscribes what OptionReach() names: at the money, today."""
        return UniverseReach(tuple(reaches) or (OptionReach(),), underlying)

    @property
    def strikes_below(self) -> int:
        return listed_strikes(max(r.points_below for r in self.reaches), self.underlying)

    @property
    def strikes_above(self) -> int:
        return listed_strikes(max(r.points_above for r in self.reaches), self.underlying)

    @property
    def min_days(self) -> int:
        return min(r.min_days for r in self.reaches)

    @property
    def max_days(self) -> int:
        return max(r.max_days for r in self.reaches)

    def keeps(self, right: Right, expiry: date, strike: float, reference: date, price: Optional[float]) -> bool:
        """Is the contract inside at least one reach? Days count from `reference` (the trading day the selection
        is for); distance from `price` (None when the selection has no underlying price: strikes not judged)."""
        days = ((expiry.date() if isinstance(expiry, datetime) else expiry) - reference).days  # LEAN: a datetime
        distance = None if price is None else float(strike) - price
        slack = STRIKE_STEP.get(self.underlying, 1.0)
        return any(reach.holds(right, days, distance, slack) for reach in self.reaches)

    def keeper(self, reference: date, price: Optional[float]) -> Callable[[Right, date, float], bool]:
        """`keeps` for one selection: (right, expiry, strike) -> inside a reach."""
        return lambda right, expiry, strike: self.keeps(right, expiry, strike, reference, price)


def universe_price(value: Any) -> Optional[float]:
    """The underlying price an option universe selection carries, or None when it has none that can be used (no
    underlying row, zero, not a finite number): strikes are then not judged (UniverseReach.keeps)."""
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return price if math.isfinite(price) and price > 0 else None


# a guarded hook call: (strategy id, hook name, the call, the default when it raises) -> its result; main.py passes
# the engine's one wrapper around strategy callbacks (engine/safe_call.py StrategyCalls.call)
GuardedCall = Callable[[str, str, Callable[[], Optional[OptionReach]], None], Optional[OptionReach]]


def universe_reach(
    strategies: Iterable[Strategy[Any]], spot: float, underlying: str, guarded: GuardedCall
) -> UniverseReach:
    """UniverseReach of the enabled strategies at `spot`. LEAN runs the option filter function inside its
    universe selection, where an exception stops the algorithm: each option_reach goes through `guarded`, and a
    strategy whose reach raises (logged there) is left out of the union, so it can choose no contract that day
    and cannot enter; the others go on."""
    reaches = [
        guarded(strategy.strategy_id, "option_reach", partial(strategy.option_reach, spot), None)
        for strategy in strategies
        if strategy.enabled
    ]
    return UniverseReach.of([reach for reach in reaches if reach is not None], underlying)


@dataclass(frozen=True)
class Reduce:
    """An adjustment (Strategy.adjustment): close `units` whole units of the position's structure now and keep
    the rest open (a partial close). `units` at or above what is held closes the whole position."""

    units: int
    reason: str


@dataclass(frozen=True)
class StrategyConfig:
    """The fields every strategy has. Subclasses add their own rule values and re-declare these with their own
    defaults and sources; `PARAMETER_PREFIX` names them in config.json (`<prefix>-enabled`, ...)."""

    PARAMETER_PREFIX: ClassVar[str] = ""

    enabled: bool = True
    bp_per_position: float = 0.02  # share of equity one full-size position is sized to use (ours)
    max_units: int = 10  # safety cap per position (ours)

    def __post_init__(self) -> None:
        require(self, fraction(self.bp_per_position), "bp_per_position", "must be in (0, 1]")
        require(self, self.max_units >= 1, "max_units", "must be >= 1")
        self.validate()

    def validate(self) -> None:
        """A subclass's own checks (raise ValueError through core.params.require/fail)."""


ConfigT = TypeVar("ConfigT", bound=StrategyConfig)


class Strategy(Generic[ConfigT]):
    """Subclass it, set `strategy_id`, `config_type` and `max_contracts_per_unit`, override the hooks you need.

    Every hook has a safe default, so a strategy overrides only what it does:
      entry_plan        None: never enters
      exit_reason       None: holds until a breaker, an expiry settlement or CLOSE_ALL closes it
      adjustment        None: no partial close (a `Reduce` closes whole units and keeps the rest; a roll is an
                        exit_reason now and an entry_plan at the next entry moment)
      bp_share          config.bp_per_position: the share of equity an entry is charged against the BP limit
      margin_estimate   every short contract at the broker's naked rate, no OTM credit (conservative)
      option_reach      nothing beyond the at-the-money strikes and today's expiry
      max_leg_contracts config.max_units x max_contracts_per_unit: the largest leg a stored record may have
    """

    strategy_id: ClassVar[str] = ""
    config_type: ClassVar[type[StrategyConfig]] = StrategyConfig
    max_contracts_per_unit: ClassVar[int] = 1  # the largest |quantity| of one leg per unit of the structure

    def __init__(self, config: ConfigT, market: Params) -> None:
        self.config = config
        self.market = market  # the template's shared parameters: underlying, point scale, margin rates
        self.last_reason = ""  # why the last entry_plan call returned what it did (for the log)
        self.last_skip_routine = False  # the last reason only says "not now": not worth a log line

    @classmethod
    def from_parameters(cls, get: ParameterGetter, market: Params) -> Strategy[ConfigT]:
        return cls(read_config(cls.config_type, get), market)  # type: ignore[arg-type]

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    # -- hooks ----------------------------------------------------------------------------------------------------

    def entry_plan(self, view: MarketView, state: StrategyStateRecord, size_factor: float) -> Optional[EntryPlan]:
        """None unless this is an entry moment and the chain gives the structure (say why with `skip`)."""
        return self.skip("this strategy has no entry rule", routine=True)

    def exit_reason(self, view: MarketView, position: PositionRecord) -> Optional[str]:
        """Why the position must be closed now, or None. `position.contracts` are what it holds now (after any
        partial close), its targets what it stored when it opened."""
        return None

    def adjustment(self, view: MarketView, position: PositionRecord) -> Optional[Reduce]:
        """Asked when exit_reason said None: a Reduce to close part of the position now, or None."""
        return None

    def bp_share(self) -> float:
        return self.config.bp_per_position

    def margin_estimate(self, position: PositionRecord, spot: Optional[float]) -> float:
        return conservative_margin(position, spot, self.market)

    def option_reach(self, spot: float) -> OptionReach:
        return OptionReach()

    def max_leg_contracts(self) -> int:
        return self.config.max_units * self.max_contracts_per_unit

    # -- for subclasses -------------------------------------------------------------------------------------------

    def skip(self, reason: str, routine: bool = False) -> Optional[EntryPlan]:
        """Record why there is no plan (logged once a day unless `routine`); returns None, the plan there is."""
        self.last_reason = reason
        self.last_skip_routine = routine
        return None

    def planned(self, plan: EntryPlan) -> EntryPlan:
        self.last_reason = plan.reason
        self.last_skip_routine = False
        return plan

    @staticmethod
    def fact(position: PositionRecord, name: str) -> Optional[float]:
        """A per-position fact this strategy stored with the entry plan (`EntryPlan.facts`); None when the
        position has none by that name (opened before the fact existed, or adopted)."""
        return next((fact.value for fact in position.facts if fact.name == name), None)


def conservative_margin(position: PositionRecord, spot: Optional[float], market: Params) -> float:
    """Buying power the position holds when the platform cannot tell: every short contract at the naked rate
    (the larger of the equity and index rates, without the out-of-the-money credit, a covering long not
    netted), longs 0. Over-states on purpose: refusing an entry too early is safer than committing too much."""
    rate = max(market.naked_margin_fraction_equity, market.naked_margin_fraction_index)
    total = 0.0
    for contract in position.contracts:
        if contract.quantity >= 0:
            continue
        reference = spot if spot is not None and math.isfinite(spot) and spot > 0 else contract.strike
        per_share = max(rate * reference, market.naked_margin_floor * contract.strike)
        total += -contract.quantity * per_share * OPTION_MULTIPLIER
    return total


def position_value(view: MarketView, position: PositionRecord) -> Optional[float]:
    """Mark-to-market of the held contracts from quote mids (negative when short premium dominates);
    None when any contract has no usable quote."""
    total = 0.0
    for contract in position.contracts:
        quote = view.quote(contract.symbol)
        if quote is None or not usable(quote):
            return None
        total += contract.quantity * quote.mid * OPTION_MULTIPLIER
    return total


def usable(quote: OptionQuote) -> bool:
    # a zero or crossed ask means no market for the contract right now, so its mid is not a price
    return quote.ask > 0 and quote.bid >= 0 and quote.ask >= quote.bid


def stored_target_hit(pnl: Optional[float], position: PositionRecord) -> Optional[str]:
    """ "profit target" / "stop" when the P&L reached the targets the position stored when it opened (never a
    parameter); None when neither is reached, the P&L is unknown or the position stored no targets."""
    if pnl is None:
        return None
    if position.profit_target > 0 and pnl >= position.profit_target:
        return f"profit target ({pnl:.0f} >= {position.profit_target:.0f})"
    if position.max_loss > 0 and -pnl >= position.max_loss:
        return f"stop (loss {-pnl:.0f} >= {position.max_loss:.0f})"
    return None


def entered_this_month(state: StrategyStateRecord, now: datetime) -> Optional[date]:
    """The day of this calendar month's entry, if the strategy entered this month (a once-a-month rule)."""
    last = state.last_entry_day
    return last if last is not None and (last.year, last.month) == (now.year, now.month) else None


def position_units(position: PositionRecord) -> int:
    """Units of the structure: the gcd of the contract quantities (1-1-2 x3 -> 3)."""
    units = 0
    for contract in position.contracts:
        units = math.gcd(units, abs(contract.quantity))
    return units


def position_pnl(view: MarketView, position: PositionRecord) -> Optional[float]:
    """Unrealised P&L in account currency: value now minus the net price paid at entry."""
    value = position_value(view, position)
    if value is None:
        return None
    return value - position.entry_price * position_units(position) * OPTION_MULTIPLIER


def legs_total(per_unit: Sequence[Tuple[OptionQuote, int]], units: int) -> Tuple[LegSpec, ...]:
    """LegSpecs with the total signed quantity of each leg."""
    return tuple(
        LegSpec(quote.symbol, quote.underlying, quote.right, quote.strike, quote.expiry, quantity * units)
        for quote, quantity in per_unit
    )


def before_close(view: MarketView, regular: time) -> datetime:
    """A rule's clock time measured from the session's actual close: `regular` is written for a 16:00 close,
    so on a 13:00 early close 15:00 ("an hour before the close") becomes 12:00. Without a known close (None)
    the regular clock time stands."""
    today = view.now.date()
    close = view.session_close
    if close is None or close.date() != today:
        return datetime.combine(today, regular)
    return close - (datetime.combine(today, REGULAR_CLOSE) - datetime.combine(today, regular))


def vix_volatility(view: MarketView) -> Optional[float]:
    """VIX / 100 as an annual volatility for the no-greeks delta estimate; None without a usable VIX."""
    vix = view.vix
    return vix / 100.0 if vix is not None and vix > 0 else None


def in_window(now: datetime, start: time, minutes: int) -> bool:
    """start <= now's time < start + minutes (same day)."""
    begin = datetime.combine(now.date(), start)
    return begin <= now < begin + timedelta(minutes=minutes)


def units_for(equity: float, bp_fraction: float, size_factor: float, margin_per_unit: float, cap: int) -> int:
    """Whole units that fit in equity x BP fraction x size factor at `margin_per_unit`, at most `cap`."""
    if margin_per_unit <= 0 or size_factor <= 0 or equity <= 0:
        return 0
    return max(0, min(cap, math.floor(equity * bp_fraction * size_factor / margin_per_unit)))
