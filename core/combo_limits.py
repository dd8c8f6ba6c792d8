"""Combo limit prices as LEAN reads them (LEAN 24863901): what a limit price means, its tick, and a walk.

The adapter (main.py `LeanBroker.submit_combo_limit`) sends the legs as LEAN requires them
(Algorithm/QCAlgorithm.Trading.cs `CheckComboOrderSizing`): leg quantities reduced by their greatest common
divisor (the ratio) and the number of units as the combo quantity, which is therefore always positive. LEAN's
group then buys (Common/Orders/GroupOrderManager.cs `Direction`), and Common/Orders/Fills/FillModel.cs
`ComboLimitFill` fills every leg at once when sum(ratio x leg price) is strictly BELOW the limit, each leg
priced on its own side (ask for a leg bought, bid for a leg sold). So a limit price is the signed net price of
one unit of the ratio legs: positive pays at most that debit, negative receives at least a little more than that
credit. A credit structure whose limit stays negative can never fill for a debit.
LEAN rounds the limit to the smallest minimum price variation of the legs, judged at the leg order's price,
which is 0 at submission (Engine/TransactionHandlers/BrokerageTransactionHandler.cs `RoundOrderPrices`, case
ComboLimit): 0.01 for equity options (Data/symbol-properties/symbol-properties-database.csv `usa,[*],option`),
0.05 for index options (Common/Securities/IndexOption/IndexOptionSymbolProperties.cs
`MinimumPriceVariationForPrice` below $3). Prices from `limit_walk` sit on that grid, so LEAN leaves them as
they are.
"""

from __future__ import annotations

import math
from typing import List, Mapping, Sequence

from core.contracts import combo_ratio
from core.ports import LegSpec

# underlyings whose options LEAN models as index options (main.py adds them with add_index_option)
INDEX_OPTION_UNDERLYINGS = frozenset({"SPX", "NDX", "RUT"})
EQUITY_OPTION_TICK = 0.01
INDEX_OPTION_COMBO_TICK = 0.05


def limit_tick(legs: Sequence[LegSpec]) -> float:
    """The increment LEAN rounds this combo's limit price to: the smallest of the legs' (see the module doc)."""
    if legs and all(leg.underlying in INDEX_OPTION_UNDERLYINGS for leg in legs):
        return INDEX_OPTION_COMBO_TICK
    return EQUITY_OPTION_TICK


def unit_price(legs: Sequence[LegSpec], prices: Mapping[str, float]) -> float:
    """sum(ratio x price) of one unit of the ratio legs, in the limit price's sign convention. For the mid pass
    each leg's mid; for the far side (what crossing the spread costs) the ask of legs bought and the bid of legs
    sold."""
    ratios, _ = combo_ratio(leg.quantity for leg in legs)
    return sum(ratio * prices[leg.symbol] for leg, ratio in zip(legs, ratios, strict=True))


def _on_grid(price: float, tick: float, up: bool) -> float:
    steps = price / tick
    nearest = round(steps)
    if abs(steps - nearest) < 1e-9:
        return round(nearest * tick, 10)
    return round((math.ceil(steps) if up else math.floor(steps)) * tick, 10)


def limit_walk(mid: float, far: float, tick: float, steps: int, ceiling: float) -> List[float]:
    """Limit prices to try in turn: from `mid` (rounded down to the tick, the patient side) toward `far` in
    `steps` equal moves, the last one tick past `far` (LEAN fills only strictly below the limit, so a limit equal
    to the far side does not cross). Every price is on the tick grid, rises (never repeats) and is at most
    `ceiling` (for a credit entry: minus the least credit worth taking, below 0). Empty when even the mid is
    above the ceiling: the entry cannot be priced within its bound."""
    if tick <= 0 or steps < 1:
        raise ValueError("tick must be positive and steps at least 1")
    top = _on_grid(ceiling, tick, up=False)
    start = _on_grid(mid, tick, up=False)
    if start > top:
        return []
    target = _on_grid(max(far, mid), tick, up=True) + tick
    prices: List[float] = []
    for step in range(steps + 1):
        raw = mid + (target - mid) * step / steps
        price = min(_on_grid(raw, tick, up=step == steps), top)
        if not prices or price > prices[-1]:
            prices.append(price)
    return prices
