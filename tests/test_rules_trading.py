"""Issue 10 (trading rules a trader can trust), each point driven through the harness running main.py."""

from __future__ import annotations

from datetime import date, datetime, time

from persistence.records import GroupPurpose
from tests.harness.simulation import Deployment

ONLY_ZERO_DTE = {"lt112-enabled": "false"}


def _exit_groups(deployment: Deployment, strategy_id: str) -> list:
    snapshot = deployment.engine.snapshot()
    return [g for g in snapshot.groups.values() if g.strategy_id == strategy_id and g.purpose is GroupPurpose.EXIT]


# -- 1. early-close days ------------------------------------------------------------------------------------------


def test_zero_dte_on_an_early_close_friday_is_closed_before_the_13_00_close() -> None:
    friday = date(2024, 11, 29)  # the day after Thanksgiving: the exchange closes at 13:00
    # a target and a stop that cannot fire: only the clock rules close the position
    parameters = {**ONLY_ZERO_DTE, "zero-dte-profit-target": "1.0", "zero-dte-stop-credit-multiple": "50"}
    deployment = Deployment(seed=1, start=friday, end=friday, parameters=parameters).run()
    assert deployment.runtime_error is None
    snapshot = deployment.engine.snapshot()
    entered = [p for p in snapshot.positions.values() if p.strategy_id == "zero_dte"]
    assert entered, "the 10:30 entry happens on a 13:00-close Friday too"
    exits = _exit_groups(deployment, "zero_dte")
    assert exits and all(g.created_at <= datetime.combine(friday, time(12, 30)) for g in exits)
    assert all(g.status.value == "FILLED" for g in exits), "closed by our exit, not by expiry"
    assert not deployment.broker_holdings(), "nothing may be held into the 13:00 expiry"
