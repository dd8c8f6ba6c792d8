"""Synthetic market: a seeded random-walk underlying, a VIX-like level and a lazily built option chain.

Not LEAN data. The underlying moves on the slice grid of `market_calendar.slice_times` (bar end times,
step configurable, 5 minutes by default) with an overnight gap; its volatility reacts to moves (falls
push vol up, like SPY/VIX). Option values are Black-Scholes at that vol (`black_scholes.py`).

Performance: the path is computed once per market (a deployment reuses it across restarts); a step's chain is
built only when asked for and cached for that step; single-contract quotes (fills, marks) are cached per step.
Strikes: every $1 within 5 % of spot, every $5 out to 25 %.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import date, datetime
from typing import Dict, List, Optional, Tuple

from persistence.records import Right
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
        self._chains: Dict[int, List[ContractQuote]] = {}
        self._quotes: Dict[Tuple[int, date, float, Right], ContractQuote] = {}
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
    def strikes(spot: float) -> List[float]:
        near = [float(k) for k in range(math.floor(spot * 0.95), math.ceil(spot * 1.05) + 1)]
        far_low = [float(k) for k in range(5 * math.floor(spot * 0.75 / 5), int(near[0]), 5)]
        far_high = [float(k) for k in range(5 * math.ceil(near[-1] / 5 + 1e-9), int(spot * 1.25) + 1, 5)]
        return far_low + near + far_high

    def quote(self, index: int, expiry: date, strike: float, right: Right) -> ContractQuote:
        key = (index, expiry, strike, right)
        cached = self._quotes.get(key)
        if cached is None:
            step = self.steps[index]
            t_years = years_to_expiry(step.time, expiry)
            price, delta, gamma = bs_values(step.price, strike, t_years, step.vol, self.rate, right)
            bid, ask = bid_ask(price)
            cached = ContractQuote(expiry, strike, right, price, bid, ask, delta, gamma)
            self._quotes[key] = cached
        return cached

    def chain(self, index: int, max_days: int = 200) -> List[ContractQuote]:
        """Every listed contract at this step (expiries still trading), built once per step."""
        chain = self._chains.get(index)
        if chain is None:
            step = self.steps[index]
            strikes = self.strikes(step.price)
            chain = [
                self.quote(index, expiry, strike, right)
                for expiry in option_expiries(step.time.date(), max_days)
                if years_to_expiry(step.time, expiry) > 0
                for strike in strikes
                for right in (Right.PUT, Right.CALL)
            ]
            self._chains[index] = chain
            self.chain_builds += 1
        return chain

    chain_builds = 0  # how many chains were built (the laziness test reads it)

    def forget_before(self, index: int) -> None:
        """Drop cached chains/quotes of earlier steps (memory stays flat over long runs)."""
        for old in [i for i in self._chains if i < index]:
            del self._chains[old]
        if len(self._quotes) > 20000:
            self._quotes = {key: value for key, value in self._quotes.items() if key[0] >= index}
