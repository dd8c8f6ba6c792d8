"""The strategies this template trades: one file each, registered by one line below.

To add a strategy, write strategies/<name>.py (a `Strategy` subclass and its config, see strategies/base.py and
README "Write your own strategy") ending with `STRATEGY = <YourClass>`, and add its module to `REGISTERED`.
Nothing else names it: the engine, main.py and the stored records know strategies only through this list.
"""

from __future__ import annotations

import importlib
from typing import Any, Tuple

from core.params import ParameterGetter, Params
from strategies.base import Strategy

REGISTERED: Tuple[str, ...] = (
    "strategies.lt112",
    "strategies.zero_dte",
    "strategies.put_credit_spread",
)


def strategy_classes() -> Tuple[type[Strategy[Any]], ...]:
    """The registered strategy classes, in registration order; a module without a `STRATEGY` Strategy subclass,
    or two strategies with one id, is a programming error and raises at start (in initialize, not mid-run)."""
    classes = []
    for module_name in REGISTERED:
        cls = getattr(importlib.import_module(module_name), "STRATEGY", None)
        if not (isinstance(cls, type) and issubclass(cls, Strategy) and cls.strategy_id):
            raise TypeError(f"{module_name} does not define STRATEGY = <a Strategy subclass with a strategy_id>")
        classes.append(cls)
    ids = [cls.strategy_id for cls in classes]
    if len(set(ids)) != len(ids):
        raise TypeError(f"two registered strategies share an id: {ids}")
    return tuple(classes)


def build_strategies(get: ParameterGetter, market: Params) -> Tuple[Strategy[Any], ...]:
    """Every registered strategy with its config read from the parameters (ValueError names a bad one)."""
    return tuple(cls.from_parameters(get, market) for cls in strategy_classes())


def default_strategies(market: Params) -> Tuple[Strategy[Any], ...]:
    """Every registered strategy with its default config."""
    return build_strategies(lambda _name: None, market)
