"""Black-Scholes prices and greeks for the synthetic option chain (European, no dividends).

This is a test stand-in, not LEAN: LEAN's OptionContract.greeks come from its option price models
(Common/Data/Market/Greeks.cs lists the fields). Here every contract is priced with one flat volatility per step, so the
numbers are smooth and deterministic, which is all the strategies need (delta-based strike selection,
mid marks). American early exercise is ignored (SPY-style American puts are priced as European).

Pure `math`, no numpy, so it behaves the same everywhere.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from typing import Iterable, List, Sequence

from core.contracts import contract_key
from core.ports import OptionQuote
from core.records import Right

MINUTES_PER_YEAR = 365.0 * 24.0 * 60.0
EXPIRY_TIME = time(16, 0)  # options stop trading at the 16:00 ET close of the expiry day (PM settled)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _d1_d2(spot: float, strike: float, t_years: float, vol: float, rate: float) -> tuple[float, float]:
    sigma_sqrt_t = vol * math.sqrt(t_years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t_years) / sigma_sqrt_t
    return d1, d1 - sigma_sqrt_t


def _expired(t_years: float, vol: float) -> bool:
    return t_years <= 0.0 or vol <= 0.0


def bs_price(spot: float, strike: float, t_years: float, vol: float, rate: float, right: Right) -> float:  # noqa: PLR0917 (the agreed signature)
    """Black-Scholes value of one share's worth of option. At or after expiry: intrinsic value."""
    if _expired(t_years, vol):
        return max(0.0, spot - strike) if right == Right.CALL else max(0.0, strike - spot)
    d1, d2 = _d1_d2(spot, strike, t_years, vol, rate)
    discount = math.exp(-rate * t_years)
    if right == Right.CALL:
        return spot * _norm_cdf(d1) - strike * discount * _norm_cdf(d2)
    return strike * discount * _norm_cdf(-d2) - spot * _norm_cdf(-d1)


def bs_delta(spot: float, strike: float, t_years: float, vol: float, rate: float, right: Right) -> float:  # noqa: PLR0917 (the agreed signature)
    """Calls in [0, 1], puts in [-1, 0]. At or after expiry: 1/0 (call) or -1/0 (put) by moneyness."""
    if _expired(t_years, vol):
        if right == Right.CALL:
            return 1.0 if spot > strike else 0.0
        return -1.0 if spot < strike else 0.0
    d1, _ = _d1_d2(spot, strike, t_years, vol, rate)
    return _norm_cdf(d1) if right == Right.CALL else _norm_cdf(d1) - 1.0


def bs_gamma(spot: float, strike: float, t_years: float, vol: float, rate: float) -> float:
    if _expired(t_years, vol):
        return 0.0
    d1, _ = _d1_d2(spot, strike, t_years, vol, rate)
    return _norm_pdf(d1) / (spot * vol * math.sqrt(t_years))


def bs_values(  # noqa: PLR0917 (same order as bs_price)
    spot: float, strike: float, t_years: float, vol: float, rate: float, right: Right
) -> tuple[float, float, float]:
    """(price, delta, gamma) in one pass (the chain builder's hot path); same values as the functions above."""
    if _expired(t_years, vol):
        return bs_price(spot, strike, t_years, vol, rate, right), bs_delta(spot, strike, t_years, vol, rate, right), 0.0
    sqrt_t = math.sqrt(t_years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t_years) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    discount = strike * math.exp(-rate * t_years)
    n_d1 = _norm_cdf(d1)
    gamma = _norm_pdf(d1) / (spot * vol * sqrt_t)
    if right == Right.CALL:
        return spot * n_d1 - discount * _norm_cdf(d2), n_d1, gamma
    return discount * _norm_cdf(-d2) - spot * (1.0 - n_d1), n_d1 - 1.0, gamma


def years_to_expiry(now: datetime, expiry: date) -> float:
    """Time from `now` (naive New York time) to 16:00 on the expiry day, in years of 365 days."""
    minutes = (datetime.combine(expiry, EXPIRY_TIME) - now).total_seconds() / 60.0
    return max(0.0, minutes / MINUTES_PER_YEAR)


def half_spread(price: float) -> float:
    """Half the bid/ask spread: 3 % of the value, at least 1 cent, at most 25 cents (SPY-like, wide enough
    that crossing the spread costs something)."""
    return min(0.25, max(0.01, 0.03 * price))


def bid_ask(price: float, tick: float = 0.01) -> tuple[float, float]:
    """Bid and ask on the contract's tick grid around `price`: bid at least one tick (a listed contract is never
    quoted at zero), ask at least one tick above the bid."""
    half = max(tick, half_spread(price))
    bid = max(tick, math.floor((price - half) / tick + 1e-9) * tick)
    ask = max(bid + tick, math.ceil((price + half) / tick - 1e-9) * tick)
    return round(bid, 2), round(ask, 2)


def option_quotes(  # noqa: PLR0917 (the agreed signature)
    underlying: str,
    spot: float,
    now: datetime,
    expiries: Iterable[date],
    strikes: Sequence[float],
    vol: float,
    rate: float = 0.04,
) -> List[OptionQuote]:
    """A put and a call per (expiry, strike), priced with Black-Scholes, bid/ask around the value, BS delta.

    Expiries already past their 16:00 close are skipped (LEAN delists them)."""
    quotes: List[OptionQuote] = []
    for expiry in expiries:
        t_years = years_to_expiry(now, expiry)
        if t_years <= 0.0:
            continue
        for strike in strikes:
            for right in (Right.PUT, Right.CALL):
                price = bs_price(spot, strike, t_years, vol, rate, right)
                bid, ask = bid_ask(price)
                delta = bs_delta(spot, strike, t_years, vol, rate, right)
                key = contract_key(underlying, expiry, right, strike)
                quotes.append(OptionQuote(key, underlying, right, float(strike), expiry, bid, ask, delta))
    return quotes
