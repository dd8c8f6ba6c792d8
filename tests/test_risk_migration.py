"""risk v1/v2 -> v3: the old record (live drawdown and up to 500 daily drawdown points inside it) loads as the small
v3 record, keeps every fact the breakers decide from, and is rewritten at v2 by the next save."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, Dict

import pytest

from core.records import BreakerLevel, RiskDaysRecord
from persistence.migrations import STEPS
from persistence.schemas import CURRENT_VERSION
from tests.harness.object_store import SimulatedObjectStore
from tests.test_persistence_store import LIVE, _raw, restart

V1_RISK_BODY = {
    "peak_equity": 261_000.0,
    "drawdown": 0.104,
    "consecutive_losses": 2,
    "daily_loss": 1_250.0,
    "daily_loss_day": "2024-03-04",
    "correlation_score": 0.5,
    "breaker": "HALVE",
    "breaker_since": "2024-03-01T10:31:00",
    "applied_position_ids": ["p1", "p2"],
    "updated_at": "2024-03-04T15:45:00",
    "daily_drawdowns": [
        {"day": (date(2024, 1, 2) + timedelta(days=d)).isoformat(), "equity": 250_000.0, "drawdown": 0.01}
        for d in range(300)
    ],
}


V2_RISK_BODY = {**V1_RISK_BODY, "strategy_losses": []}


def test_versions_and_steps_are_in_place() -> None:
    assert CURRENT_VERSION["risk"] >= 3 and CURRENT_VERSION["risk_days"] == 1  # v4 chains on (high_water_mark)
    assert ("risk", 1) in STEPS and ("risk", 2) in STEPS and ("risk", 3) in STEPS


@pytest.mark.parametrize(("version", "body"), [(1, V1_RISK_BODY), (2, V2_RISK_BODY)])
def test_a_risk_record_saved_at_v1_or_v2_loads_its_breaker_facts_and_is_rewritten_at_v3(
    version: int, body: Dict[str, Any]
) -> None:
    store = SimulatedObjectStore()
    store.save(LIVE.record_key("risk", "a"), _raw("risk", version, 7, body))
    store.flush()
    state, _log, loaded = restart(store)
    assert loaded.quarantined == [] and loaded.migrated == ["risk"]
    risk = loaded.risk
    assert risk is not None
    assert (risk.peak_equity, risk.consecutive_losses, risk.daily_loss) == (261_000.0, 2, 1_250.0)
    assert risk.daily_loss_day == date(2024, 3, 4) and risk.breaker is BreakerLevel.HALVE
    assert risk.applied_position_ids == ("p1", "p2") and risk.correlation_score == 0.5
    assert loaded.risk_days == {}
    state.put(risk)  # unchanged: nothing written
    state.put(RiskDaysRecord("2024-03", ()))
    state.put(replace(risk, peak_equity=262_000.0))
    state.flush()
    rewritten = json.loads(SimulatedObjectStore(disk=store.disk).read(LIVE.record_key("risk", "b")))
    assert rewritten["version"] == CURRENT_VERSION["risk"] and "daily_drawdowns" not in rewritten["body"]
    assert rewritten["seq"] == 8
    _state, _log, again = restart(SimulatedObjectStore(disk=store.disk))
    assert again.risk is not None and again.risk.peak_equity == 262_000.0
    assert again.risk_days == {"2024-03": RiskDaysRecord("2024-03", ())}
