"""Synthetic market: a seeded random-walk underlying, a VIX-like level and a lazily built option chain.

Not LEAN data. The underlying moves on the slice grid of `market_calendar.slice_times` (bar end times,
step configurable, 5 minutes by default) with an overnight gap; its volatility reacts to moves (falls
push vol up, like SPY/VIX). SPX is the same path at `SPX_PER_SPY` times the level (its own price and bars,
never VIX's). Option values are Black-Scholes with a put skew (`skewed_vol`): the at-the-money vol rises
for strikes below spot, so a 5-delta put 120 days out sits about 20 % below spot, as in the market.

Listing (as the exchanges list them): SPY every $1 within 5 % of spot and every $5 out to 25 %; SPX/SPXW every
$5 from 75 % to 125 % of spot (Cboe lists wider still; deep wings are not modelled).
Minimum tick (Data/symbol-properties/symbol-properties-database.csv `usa,[*],option` 0.01 for SPY options;
Common/Securities/IndexOption/IndexOptionSymbolProperties.cs `MinimumPriceVariationForPrice`: 0.05 below $3,
0.10 from $3, for SPXW; LEAN 24863901): bid and ask sit on that grid and never at zero.

Performance: the path is computed once per market (a deployment reuses it across restarts); a step's chain is
built only when asked for and cached for that step; single-contract quotes (fills, marks) are cached per step.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import date, datetime
from typing import Dict, FrozenSet, List, Optional, Tuple

from core.records import Right
from tests.harness.black_scholes import bid_ask, bs_values, years_to_expiry
from tests.harness.market_calendar import option_expiries, slice_times


@dataclass(frozen=True)
class Step:
    index: int
    time: datetime  # slice (bar end) time, naive New York
    open: float  # this bar's open
    price: float  # this bar's close
    session_open: float  # open of the day's first bar
    vol: float
    vix: float


@dataclass(frozen=True)
class ContractQuote:
    expiry: date
    strike: float
    right: Right
    price: float
    bid: float
    ask: float
    delta: float
    gamma: float


SPX_PER_SPY = 10.0  # SPX trades at about ten times SPY
INDEX_OPTION_ROOTS = frozenset({"SPX", "SPXW"})


def level_scale(underlying: str) -> float:
    """The underlying's price level relative to the simulated path (SPY = 1)."""
    return SPX_PER_SPY if underlying in INDEX_OPTION_ROOTS else 1.0


def minimum_tick(underlying: str, price: float) -> float:
    """Minimum price variation of an option on `underlying` at `price` (see the module docstring)."""
    if underlying in INDEX_OPTION_ROOTS:
        return 0.10 if price >= 3.0 else 0.05
    return 0.01


def skewed_vol(atm_vol: float, spot: float, strike: float) -> float:
    """Put skew: +3.4 x ATM vol per unit of log-moneyness below spot, a mild fall above (floor 70 % of ATM)."""
    moneyness = math.log(strike / spot)
    factor = 1.0 - 3.4 * moneyness if moneyness < 0 else max(0.7, 1.0 - 0.8 * moneyness)
    return atm_vol * factor


class SyntheticMarket:
    def __init__(
        self,
        seed: int,
        start: date,
        end: date,
        *,
        step_minutes: int = 5,
        spot: float = 470.0,
        base_vol: float = 0.15,
        rate: float = 0.04,
    ) -> None:
        self.rate = rate
        self.steps: List[Step] = []
        self._index_of: Dict[datetime, int] = {}
        self._chains: Dict[Tuple[int, str], List[ContractQuote]] = {}
        self._quotes: Dict[Tuple[int, date, float, Right, str], ContractQuote] = {}
        self._listings: Dict[Tuple[int, str], Tuple[FrozenSet[date], FrozenSet[float]]] = {}
        self.universe_windows: Dict[Tuple[int, str, int, int], Optional[Tuple[float, float]]] = {}
        rng = random.Random(seed)
        step_years = step_minutes / (252 * 390)
        anchor = spot  # slow average the vol reacts to
        vol = base_vol
        last_day: Optional[date] = None
        session_open = spot
        for index, moment in enumerate(slice_times(start, end, step_minutes)):
            bar_open = spot
            if moment.date() != last_day:
                if last_day is not None:  # overnight gap
                    spot *= math.exp(vol * math.sqrt(1 / 252) * 0.5 * rng.gauss(0.0, 1.0))
                bar_open = spot
                session_open = spot
                last_day = moment.date()
            spot *= math.exp(vol * math.sqrt(step_years) * rng.gauss(0.0, 1.0))
            anchor += (spot - anchor) * 0.01
            vol = min(0.8, max(0.08, base_vol * math.exp(-8.0 * math.log(spot / anchor))))
            self.steps.append(Step(index, moment, bar_open, round(spot, 2), round(session_open, 2), vol, vol * 110))
            self._index_of[moment] = index
        self._times = [step.time for step in self.steps]

    def index_at(self, moment: datetime) -> Optional[int]:
        return self._index_of.get(moment)

    def index_at_or_before(self, moment: datetime) -> Optional[int]:
        """The last step at or before `moment` (its prices are the latest known then); None before the first."""
        position = bisect.bisect_right(self._times, moment)
        return position - 1 if position else None

    def first_index_after(self, moment: datetime) -> int:
        """The first step strictly after `moment` (len(steps) when there is none)."""
        return bisect.bisect_right(self._times, moment)

    @staticmethod
    def strikes(spot: float, underlying: str = "SPY") -> List[float]:
        """Listed strikes around `spot` (see the module docstring)."""
        if underlying in INDEX_OPTION_ROOTS:
            return [float(k) for k in range(5 * math.floor(spot * 0.75 / 5), int(spot * 1.25) + 1, 5)]
        near = [float(k) for k in range(math.floor(spot * 0.95), math.ceil(spot * 1.05) + 1)]
        far_low = [float(k) for k in range(5 * math.floor(spot * 0.75 / 5), int(near[0]), 5)]
        far_high = [float(k) for k in range(5 * math.ceil(near[-1] / 5 + 1e-9), int(spot * 1.25) + 1, 5)]
        return far_low + near + far_high

    def level(self, index: int, underlying: str = "SPY") -> float:
        return round(self.steps[index].price * level_scale(underlying), 2)

    def quote(self, index: int, expiry: date, strike: float, right: Right, underlying: str = "SPY") -> ContractQuote:
        key = (index, expiry, strike, right, underlying)
        cached = self._quotes.get(key)
        if cached is None:
            step = self.steps[index]
            spot = step.price * level_scale(underlying)
            t_years = years_to_expiry(step.time, expiry)
            vol = skewed_vol(step.vol, spot, strike)
            price, delta, gamma = bs_values(spot, strike, t_years, vol, self.rate, right)
            tick = minimum_tick(underlying, price)
            bid, ask = bid_ask(price, tick)
            price = max(price, tick)  # a listed contract is never valued at zero
            cached = ContractQuote(expiry, strike, right, price, bid, ask, delta, gamma)
            self._quotes[key] = cached
        return cached

    def chain(self, index: int, max_days: int = 200, underlying: str = "SPY") -> List[ContractQuote]:
        """Every listed contract at this step (expiries still trading), built once per step and underlying."""
        chain = self._chains.get((index, underlying))
        if chain is None:
            step = self.steps[index]
            strikes = self.strikes(step.price * level_scale(underlying), underlying)
            chain = [
                self.quote(index, expiry, strike, right, underlying)
                for expiry in option_expiries(step.time.date(), max_days)
                if years_to_expiry(step.time, expiry) > 0
                for strike in strikes
                for right in (Right.PUT, Right.CALL)
            ]
            self._chains[(index, underlying)] = chain
            self.chain_builds += 1
        return chain

    chain_builds = 0  # how many chains were built (the laziness test reads it)

    def is_listed(self, index: int, underlying: str, expiry: date, strike: float) -> bool:
        """Is this contract listed and still trading at the step? (No pricing: cheap.)"""
        step = self.steps[index]
        if years_to_expiry(step.time, expiry) <= 0:
            return False
        key = (index, underlying)
        listing = self._listings.get(key)
        if listing is None:
            strikes = self.strikes(self.level(index, underlying), underlying)
            listing = self._listings[key] = (frozenset(option_expiries(step.time.date())), frozenset(strikes))
        return expiry in listing[0] and strike in listing[1]

    def forget_before(self, index: int) -> None:
        """Drop cached chains/quotes of earlier steps (memory stays flat over long runs)."""
        for old in [key for key in self._chains if key[0] < index]:
            del self._chains[old]
        for cache in (self._listings, self.universe_windows):
            for stale in [key for key in cache if key[0] < index]:
                del cache[stale]
        if len(self._quotes) > 20000:
            self._quotes = {key: value for key, value in self._quotes.items() if key[0] >= index}
