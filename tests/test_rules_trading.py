"""Issue 10 (trading rules a trader can trust), each point driven through the harness running main.py."""

from __future__ import annotations

from datetime import date, datetime, time

from persistence.records import GroupPurpose
from tests.crash_drill import read_store
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


# -- 2. no stuck exits --------------------------------------------------------------------------------------------


def test_an_exit_refused_for_an_unpriced_leg_escalates_and_ends_in_needs_attention() -> None:
    """Seed 11, Friday 2024-02-16: a leg of the 0DTE condor has no price from 15:00 on, so LEAN's pre-order
    checks refuse every order on it. The engine logs the broker's reason, changes route (combo, then legging out
    buys first, which buys the short back) and stops after a bound with a persisted NEEDS ATTENTION, never
    re-sending the same refused order bar after bar (the old engine sent it 13 times)."""
    deployment = Deployment(seed=11, start=date(2024, 1, 2), end=date(2024, 2, 16)).run()
    assert deployment.runtime_error is None
    exits = [g for g in _exit_groups(deployment, "zero_dte") if g.created_at.date() == date(2024, 2, 16)]
    refused = [g for g in exits if g.status.value == "FAILED"]
    assert refused, "the scenario refuses the exit"
    bound = (
        4 + 3
    )  # MAX_EXIT_ATTEMPTS exits, then MAX_RECOVERY_ATTEMPTS completions, then completions of a half-done legging out
    assert len(exits) <= bound, f"{len(exits)} exit orders sent: the retries must be bounded"
    logs = [message for _, _, message in deployment.algorithm.logs]
    assert any("refused" in m and "no price data" in m for m in logs), "the broker's reason is logged"
    assert any("legging out" in m for m in logs), "a different route is tried"
    flagged = [p for p in deployment.engine.snapshot().positions.values() if p.attention]
    assert flagged and "NEEDS ATTENTION" in flagged[0].attention
    stored = read_store(deployment).positions[flagged[0].position_id]
    assert stored.attention == flagged[0].attention, "NEEDS ATTENTION is persisted"
