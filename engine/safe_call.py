"""The one wrapper around every strategy callback (a strategy is user code: it must never stop the engine).

A hook that raises is logged with the strategy, the hook and the error, and the engine goes on with `default`,
which callers choose as the conservative answer (no entry, no exit decision, the largest buying-power share).
Catches Exception only: a simulated crash (BaseException) still ends the run. The same failure repeating bar
after bar is logged the 1st, 10th, 100th... time, not every minute.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple, TypeVar

from core.ports import LogPort

T = TypeVar("T")
_REMEMBERED = 256  # distinct failures counted at once (bounded: a fork's bug must not grow memory)


class StrategyCalls:
    def __init__(self, log: LogPort) -> None:
        self._log = log
        self._failures: Dict[Tuple[str, str, str], int] = {}

    def call(self, strategy_id: str, hook: str, call: Callable[[], T], default: T) -> T:
        try:
            return call()
        except Exception as error:
            self._failed(strategy_id, hook, repr(error), repr(default))
            return default

    def _failed(self, strategy_id: str, hook: str, error: str, default: str) -> None:
        key = (strategy_id, hook, error)
        if key not in self._failures and len(self._failures) >= _REMEMBERED:
            self._failures.clear()
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        if count == 1 or str(count).strip("0") == "1":
            times = f" ({count} times)" if count > 1 else ""
            self._log.error(f"engine: strategy {strategy_id} {hook} failed{times}: {error}; going on with {default}")


__all__ = ["StrategyCalls"]
