"""Pure strike selection on a chain snapshot (`Sequence[OptionQuote]`).

Every function returns what it found or a `NoPick` carrying the reason, so a strategy can say exactly why
it did not enter. Deltas come first (|delta| nearest the target; puts carry negative deltas); when the data
has no greeks for a side of the chain, the percent-of-spot rule ([F]) picks the strike instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from math import exp, sqrt
from statistics import NormalDist
from typing import List, Optional, Sequence, Tuple, Union

from core.ports import OptionQuote
from core.records import Right

# A pick further than this from the target delta is not "that delta": a quarter of the target, at least 2 delta
# points (so 20 delta accepts 15-25, [F]'s "15-25 delta, never 30+"; 25 delta 18.75-31.25; 5 delta 3-7).
_DELTA_TOLERANCE_FRACTION = 0.25
_DELTA_TOLERANCE_FLOOR = 0.02
_NORMAL = NormalDist()


@dataclass(frozen=True)
class NoPick:
    reason: str


Leg = Tuple[OptionQuote, int]  # a quote and its signed quantity per unit


def expiry_nearest(chain: Sequence[OptionQuote], today: date, target_dte: int, window_days: int) -> Union[date, NoPick]:
    """The listed expiry whose DTE is nearest `target_dte`, within +-window_days (ties: the earlier one)."""
    expiries = {quote.expiry for quote in chain}
    in_window = [expiry for expiry in expiries if abs((expiry - today).days - target_dte) <= window_days]
    if not in_window:
        return NoPick(f"no expiry within {target_dte}+-{window_days} DTE (chain has {len(expiries)} expiries)")
    return min(in_window, key=lambda expiry: (abs((expiry - today).days - target_dte), expiry))


def side(chain: Sequence[OptionQuote], expiry: date, right: Right) -> List[OptionQuote]:
    """Quoted contracts (ask > 0) of one expiry and right, by strike."""
    quotes = [q for q in chain if q.expiry == expiry and q.right == right and q.ask > 0]
    return sorted(quotes, key=lambda q: q.strike)


def _signed_ok(quote: OptionQuote) -> bool:
    # a put's delta is in [-1, 0], a call's in [0, 1]; anything else is bad data and is ignored
    if quote.delta is None:
        return False
    return quote.delta <= 0 if quote.right == Right.PUT else quote.delta >= 0


def has_deltas(quotes: Sequence[OptionQuote]) -> bool:
    return any(_signed_ok(quote) for quote in quotes)


def by_delta(quotes: Sequence[OptionQuote], target_abs_delta: float) -> Union[OptionQuote, NoPick]:
    """|delta| nearest the target (ties: the further out of the money, i.e. the smaller |delta|)."""
    with_delta = [quote for quote in quotes if _signed_ok(quote)]
    if not with_delta:
        return NoPick("no contract with a delta")
    best = min(with_delta, key=lambda q: (abs(abs(q.delta or 0.0) - target_abs_delta), abs(q.delta or 0.0)))
    tolerance = max(_DELTA_TOLERANCE_FLOOR, target_abs_delta * _DELTA_TOLERANCE_FRACTION)
    error = abs(abs(best.delta or 0.0) - target_abs_delta)
    if error > tolerance:
        return NoPick(f"nearest |delta| {abs(best.delta or 0.0):.3f} is too far from {target_abs_delta:.3f}")
    return best


def nearest_strike(quotes: Sequence[OptionQuote], strike: float) -> Union[OptionQuote, NoPick]:
    """The listed strike nearest `strike` (ties: the lower strike)."""
    if not quotes:
        return NoPick("no quoted contract")
    return min(quotes, key=lambda q: (abs(q.strike - strike), q.strike))


def by_spot_fraction(quotes: Sequence[OptionQuote], spot: float, fraction: float) -> Union[OptionQuote, NoPick]:
    """The listed strike nearest spot x fraction ([F]'s percent rule)."""
    if spot <= 0:
        return NoPick("no underlying price")
    return nearest_strike(quotes, spot * fraction)


def strike_for_delta(spot: float, target_abs_delta: float, right: Right, vol: float, years: float) -> float:
    """The strike whose Black-Scholes delta (no rates, no dividends) is the target at volatility `vol`:
    a put's |delta| = N(-d1), a call's = N(d1), d1 = (ln(S/K) + vol^2 t / 2) / (vol sqrt t). An estimate for
    chains without greeks: with a put skew the real 5-delta put sits further out than this at ATM vol."""
    d1 = _NORMAL.inv_cdf(target_abs_delta) * (1.0 if right == Right.CALL else -1.0)
    spread = vol * sqrt(years)
    return spot * exp(-d1 * spread + spread * spread / 2.0)


# Listed strike spacing near the money (ours: SPY lists $1 strikes, SPX/SPXW $5), used to turn a distance from
# spot into a count of strikes for the option subscription's filter.
STRIKE_STEP = {"SPY": 1.0, "SPX": 5.0, "SPXW": 5.0}
# ours: an upper price level of each underlying, for the filter of the first day before any price is known
REFERENCE_PRICE = {"SPY": 700.0, "SPX": 7000.0, "SPXW": 7000.0}
STRESS_VOL = 0.40  # a stressed put-wing volatility: the filter must still reach the 5-delta put with skew


def listed_strikes(points: float, underlying: str) -> int:
    """How many listed strikes of the underlying's spacing cover `points` from the price, plus the one nearest
    it: what LEAN's OptionFilterUniverse.Strikes counts (listed strikes from the one nearest the underlying)."""
    return int(max(0.0, points) / STRIKE_STEP.get(underlying, 1.0)) + 1


def by_delta_or_fraction(  # noqa: PLR0917 (the rule's numbers, in the rule's order)
    quotes: Sequence[OptionQuote],
    target_abs_delta: float,
    spot: float,
    fraction: float,
    vol: Optional[float] = None,
    years: float = 0.0,
) -> Union[OptionQuote, NoPick]:
    """Delta when this side of the chain has deltas. Without them, the strike that has the target delta at
    volatility `vol` (e.g. VIX / 100) and `years` to expiry; the percent rule ([F]) only when neither is known."""
    if has_deltas(quotes):
        return by_delta(quotes, target_abs_delta)
    if vol is not None and vol > 0 and years > 0 and spot > 0 and quotes:
        return nearest_strike(quotes, strike_for_delta(spot, target_abs_delta, quotes[0].right, vol, years))
    return by_spot_fraction(quotes, spot, fraction)


def points_away(quotes: Sequence[OptionQuote], from_strike: float, points: float) -> Union[OptionQuote, NoPick]:
    """The listed strike nearest from_strike + points, strictly on that side of from_strike (points may be
    negative: "n points below"). Ties go to the narrower distance."""
    if points == 0:
        return NoPick("zero width")
    target = from_strike + points
    beyond = [q for q in quotes if (q.strike < from_strike if points < 0 else q.strike > from_strike)]
    if not beyond:
        return NoPick(f"no strike {'below' if points < 0 else 'above'} {from_strike:g}")
    return min(beyond, key=lambda q: (abs(q.strike - target), abs(q.strike - from_strike)))


def net_price(legs: Sequence[Leg]) -> float:
    """Net price per unit from mids: positive = debit paid, negative = credit received."""
    return sum(quote.mid * quantity for quote, quantity in legs)


def structure_problem(legs: Sequence[Leg], require_credit: bool) -> Optional[str]:
    """None when the legs make a tradable structure, else why not: a contract twice, a short leg without a
    bid (nobody to sell to), a long leg without an ask, or no credit where one is required."""
    if not legs:
        return "no legs"
    symbols = [quote.symbol for quote, _ in legs]
    if len(set(symbols)) != len(symbols):
        return "the same contract appears twice"
    for quote, quantity in legs:
        if quantity == 0:
            return f"{quote.symbol}: zero quantity"
        if quantity < 0 and quote.bid <= 0:
            return f"{quote.symbol}: short leg has no bid"
        if quantity > 0 and quote.ask <= 0:
            return f"{quote.symbol}: long leg has no ask"
    if require_credit and net_price(legs) >= 0:
        return f"no net credit (net {net_price(legs):.2f} per unit)"
    return None


def strictly_descending(strikes: Sequence[float]) -> bool:
    return all(upper > lower for upper, lower in pairwise(strikes))
