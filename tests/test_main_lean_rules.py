"""main.py follows rules real LEAN enforces (the harness models each one; see tests/test_lean_conformance.py)."""

from __future__ import annotations

import math
from datetime import date
from typing import List

from hypothesis import given
from hypothesis import strategies as st

from core.contracts import combo_ratio
from tests.harness.simulation import Deployment

START, FRIDAY = date(2024, 1, 2), date(2024, 1, 5)


def _combo_ratio(quantities: List[int]) -> tuple[List[int], int]:
    return combo_ratio(quantities)


def test_a_0dte_entry_of_many_units_goes_out_as_ratio_legs_times_units() -> None:
    """QCAlgorithm.CheckComboOrderSizing refuses legs with a common divisor: the 0DTE condor of N units is sent as
    legs of +-1 and combo quantity N (the broker sees +-N per leg)."""
    deployment = Deployment(seed=1, start=START, end=FRIDAY).run()
    orders = [o for o in deployment.algorithm.transactions.get_orders() if o.tag.startswith("zero_dte-")]
    entry = [o for o in orders if o.tag.endswith("-entry")]
    assert len(entry) == 4, "the Friday condor was placed"
    manager = entry[0].group_order_manager
    assert manager is not None and manager.quantity > 1, "many units"
    assert sorted(o.quantity for o in entry) == sorted(
        [manager.quantity, manager.quantity, -manager.quantity, -manager.quantity]
    )
    assert all(o.status.name == "FILLED" for o in orders)
    held_after = deployment.broker_holdings()
    assert not any(key.startswith("SPY") and "240105" in key for key in held_after), "the condor was closed"


@given(st.lists(st.integers(-40, 40).filter(lambda q: q != 0), min_size=1, max_size=5))
def test_combo_ratio_gives_gcd_one_legs_that_multiply_back(quantities: List[int]) -> None:
    ratios, units = _combo_ratio(quantities)
    assert units >= 1
    assert [ratio * units for ratio in ratios] == quantities
    divisor = 0
    for ratio in ratios:
        divisor = math.gcd(divisor, ratio)
    assert divisor == 1


def test_a_flush_whose_disk_write_failed_is_not_reported_durable_and_no_order_goes_out() -> None:
    """LocalObjectStore.Persist swallows write errors, so get_file_path returning proves nothing: main.py reads
    the files back, reports the flush failed, and the engine places no order on an unconfirmed write-ahead."""
    deployment = Deployment(seed=1, start=START, end=FRIDAY)
    deployment.store.failing_writes = lambda key: "zero_dte-2024" in key  # the disk refuses the 0DTE entry
    deployment.run()
    logs = [line for _, _, line in deployment.algorithm.logs]
    assert any("STATE FLUSH NOT CONFIRMED" in line for line in logs)
    assert any("STATE FLUSH FAILED" in line for line in logs)
    placed = [o for o in deployment.algorithm.transactions.get_orders() if o.tag.startswith("zero_dte-")]
    assert placed == [], "no 0DTE order while its write-ahead record is not on disk"
    lt112 = [o for o in deployment.algorithm.transactions.get_orders() if o.tag.startswith("lt112-")]
    assert lt112, "the LT112 entry (Wednesday, before any failed write) traded"
