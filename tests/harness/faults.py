"""Crash plan and broker fault plan for the crash drill.

`SimulatedCrash` derives from BaseException so algorithm code's `except Exception` never swallows it (a real
crash is not an exception the algorithm can catch either). Crash points are counted across a whole deployment
(all restarts): kinds "store-save", "store-flush" (one per key written by a flush) and "order-submit" (one just
before the broker receives an order batch and one just after it accepted it, before the algorithm sees the
tickets). `CrashPlan(crash_at=(n,))` raises at the n-th counted point; `CrashPlan()` only counts, so a first
run lists every point a drill can choose from (`points`).

`FaultPlan` makes the simulated broker behave live-like (in live the brokerage decides: per leg and partial
fills happen). Without faults, combos fill all-or-nothing like LEAN's backtest fill model (FillModel.ComboMarketFill).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Dict, List, Literal, Mapping, Optional, Sequence, Tuple

from tests.harness import object_store

CRASH_KINDS = ("store-save", "store-flush", "order-submit")


@dataclass(frozen=True)
class CrashPoint:
    number: int  # 1-based, counted over the whole deployment
    kind: str
    detail: str


class SimulatedCrash(object_store.SimulatedCrash):
    """The object store's SimulatedCrash (a BaseException) with the crash point attached."""

    def __init__(self, point: CrashPoint) -> None:
        super().__init__(f"simulated crash at point {point.number} ({point.kind} {point.detail})")
        self.point = point


class CrashPlan:
    def __init__(self, crash_at: Sequence[int] = (), kinds: Sequence[str] = CRASH_KINDS) -> None:
        unknown = set(kinds) - set(CRASH_KINDS)
        if unknown:
            raise ValueError(f"unknown crash kinds {sorted(unknown)}")
        self.crash_at = frozenset(crash_at)
        self.kinds = frozenset(kinds)
        self.points: List[CrashPoint] = []
        self.crashes: List[CrashPoint] = []
        self.enabled = True

    def point(self, kind: str, detail: str = "") -> None:
        """Count a crash point; raise SimulatedCrash if this is one the plan crashes at."""
        if not self.enabled or kind not in self.kinds:
            return
        point = CrashPoint(len(self.points) + 1, kind, detail)
        self.points.append(point)
        if point.number in self.crash_at:
            self.crashes.append(point)
            raise SimulatedCrash(point)


FaultKind = Literal["partial", "late", "never", "cancel", "reject"]


@dataclass(frozen=True)
class LegFault:
    """What the broker does with one leg instead of filling it at the next step.

    partial: fill `fraction` of the quantity (at least 1, less than all when |qty| > 1) now, the rest
             `delay_steps` steps later; late: fill everything `delay_steps` steps later; never: stay open
             until canceled; cancel: the broker cancels it (nothing filled); reject: refused at placement (INVALID).
    """

    kind: FaultKind
    fraction: float = 0.5
    delay_steps: int = 1


@dataclass
class FaultPlan:
    """Faults by (submission number, leg index); both 1-based and counted by the broker over the deployment.

    `random_rate` > 0 additionally gives each leg a fault of a random kind with that probability
    (deterministic in `seed`)."""

    rules: Mapping[Tuple[int, int], LegFault] = field(default_factory=dict)
    random_rate: float = 0.0
    seed: int = 0
    random_kinds: Tuple[FaultKind, ...] = ("partial", "late", "never", "cancel", "reject")
    _decided: Dict[Tuple[int, int], Optional[LegFault]] = field(default_factory=dict, repr=False)

    def fault_for(self, submission: int, leg: int) -> Optional[LegFault]:
        key = (submission, leg)
        if key in self.rules:
            return self.rules[key]
        if self.random_rate <= 0:
            return None
        if key not in self._decided:
            rng = random.Random(f"{self.seed}/{submission}/{leg}")
            fault = None
            if rng.random() < self.random_rate:
                fault = LegFault(rng.choice(self.random_kinds), fraction=0.5, delay_steps=rng.randint(1, 3))
            self._decided[key] = fault
        return self._decided[key]
