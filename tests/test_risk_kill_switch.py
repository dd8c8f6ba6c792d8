"""The kill switch (engine/risk.py, parameters kill-switch, kill-switch-on-close-all, kill-switch-reset): tripped by
the CLOSE_ALL breaker or a parameter, it refuses new entries until a person changes the reset parameter; it lives
in the risk record, so no restart, no pause ending and no recovery of equity resets it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.params import Params
from core.records import BreakerLevel, RiskRecord
from engine.risk import RiskManager
from persistence.codec import from_body, to_body
from persistence.migrations import upgrade
from persistence.schemas import CURRENT_VERSION
from tests.harness.object_store import SimulatedObjectStore
from tests.harness.simulation import Deployment
from tests.test_persistence_store import LIVE, _raw, restart

T0 = datetime(2024, 1, 2, 9, 31)
B = BreakerLevel


def _tripped_by_close_all(params: Params | None = None) -> RiskManager:
    risk = RiskManager(None, params or Params(), T0)
    risk.update_equity(100_000.0, T0)
    assert risk.update_equity(79_000.0, T0 + timedelta(days=1)) is True
    return risk


def test_the_close_all_breaker_trips_it_and_entries_stay_refused_after_the_pause_and_a_recovery() -> None:
    risk = _tripped_by_close_all()
    assert risk.kill_switch_tripped and risk.record.kill_switch_since == T0 + timedelta(days=1)
    assert "CLOSE_ALL" in risk.record.kill_switch_reason
    # the two-week break is over and the account is back near its peak: the breaker relaxes, the switch holds
    risk.update_equity(99_000.0, T0 + timedelta(days=30))
    assert risk.breaker is B.NONE
    assert not risk.entries_allowed(None) and not risk.entries_allowed(15.0, "lt112")
    assert risk.size_factor("lt112") == 0.0
    assert "kill-switch-reset" in risk.kill_switch_status()


def test_without_kill_switch_on_close_all_the_break_ends_by_itself() -> None:
    risk = _tripped_by_close_all(Params(kill_switch_on_close_all=False))
    assert not risk.kill_switch_tripped
    risk.update_equity(99_000.0, T0 + timedelta(days=30))
    assert risk.entries_allowed(None)


def test_a_restart_keeps_it_and_only_a_changed_reset_token_resets_it() -> None:
    record = _tripped_by_close_all().record
    assert record.kill_switch_token == ""
    same = RiskManager(record, Params(), T0 + timedelta(days=40))
    assert same.kill_switch_tripped and same.record is record, "nothing changed: nothing to write"
    reset = RiskManager(record, Params(kill_switch_reset="reviewed 2024-02-12"), T0 + timedelta(days=41))
    assert not reset.kill_switch_tripped and reset.record.kill_switch_reason == ""
    reset.update_equity(99_000.0, T0 + timedelta(days=41))
    assert reset.entries_allowed(None)
    # the next CLOSE_ALL trips it again and remembers the token in force, which then no longer resets it
    reset.update_equity(70_000.0, T0 + timedelta(days=42))
    tripped_again = reset.record
    assert tripped_again.kill_switch_token == "reviewed 2024-02-12"
    again = RiskManager(tripped_again, Params(kill_switch_reset="reviewed 2024-02-12"), T0 + timedelta(days=43))
    assert again.kill_switch_tripped


def test_a_reset_does_not_lift_a_close_all_pause_nor_trip_again_during_it() -> None:
    record = _tripped_by_close_all().record
    risk = RiskManager(record, Params(kill_switch_reset="ok"), T0 + timedelta(days=2))
    risk.update_equity(79_000.0, T0 + timedelta(days=3))
    assert risk.breaker is B.CLOSE_ALL and not risk.entries_allowed(None), "the break runs its course"
    assert not risk.kill_switch_tripped, "the same break does not trip it again"
    risk.update_equity(96_000.0, T0 + timedelta(days=16))
    assert risk.entries_allowed(None)


def test_the_kill_switch_parameter_trips_it_at_start_and_again_after_a_reset_while_still_true() -> None:
    risk = RiskManager(None, Params(kill_switch=True), T0)
    assert risk.kill_switch_tripped and risk.record.kill_switch_reason == "parameter kill-switch is true"
    assert not risk.entries_allowed(None) and risk.size_factor() == 0.0
    still_on = RiskManager(risk.record, Params(kill_switch=True, kill_switch_reset="x"), T0 + timedelta(days=1))
    assert still_on.kill_switch_tripped and still_on.record.kill_switch_token == "x"
    off = RiskManager(still_on.record, Params(kill_switch_reset="y"), T0 + timedelta(days=2))
    assert not off.kill_switch_tripped


def test_the_reset_parameter_is_validated() -> None:
    with pytest.raises(ValueError, match="kill-switch-reset"):
        Params(kill_switch_reset="x" * 65)
    with pytest.raises(ValueError, match="kill-switch-reset"):
        Params(kill_switch_reset="bad\nline")
    assert Params.from_parameters({"kill-switch": "true", "kill-switch-reset": " ok "}.get).kill_switch_reset == "ok"


def test_a_tripped_switch_survives_the_codec() -> None:
    record = _tripped_by_close_all().record
    body = json.loads(json.dumps(to_body(record)))
    assert from_body(RiskRecord, body) == record


V4_RISK_BODY = {
    "peak_equity": 261_000.0,
    "consecutive_losses": 0,
    "daily_loss": 0.0,
    "daily_loss_day": "2024-03-04",
    "correlation_score": 0.0,
    "breaker": "NONE",
    "breaker_since": None,
    "applied_position_ids": [],
    "updated_at": "2024-03-04T15:45:00",
    "strategy_losses": [],
    "high_water_mark": 262_000.0,
}


def test_a_risk_record_stored_at_v4_loads_with_the_switch_off_and_is_rewritten_at_v5() -> None:
    assert CURRENT_VERSION["risk"] == 5
    body, migrated = upgrade("risk", 4, dict(V4_RISK_BODY))
    assert migrated and body["kill_switch_since"] is None and body["kill_switch_token"] == ""
    store = SimulatedObjectStore()
    store.save(LIVE.record_key("risk", "a"), _raw("risk", 4, 3, V4_RISK_BODY))
    store.flush()
    state, _log, loaded = restart(store)
    assert loaded.quarantined == [] and loaded.migrated == ["risk"]
    risk = loaded.risk
    assert risk is not None and risk.kill_switch_since is None and risk.high_water_mark == 262_000.0
    tripped = RiskManager(risk, Params(kill_switch=True), datetime(2024, 3, 5, 9, 31)).record
    state.put(tripped)
    state.flush()
    _state, _log, again = restart(SimulatedObjectStore(disk=store.disk))
    assert again.risk is not None and again.risk.kill_switch_since == datetime(2024, 3, 5, 9, 31)
    rewritten = json.loads(SimulatedObjectStore(disk=store.disk).read(LIVE.record_key("risk", "b")))
    assert rewritten["version"] == 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(50_000.0, 150_000.0), min_size=1, max_size=40))
def test_once_tripped_no_equity_path_and_no_restart_with_the_same_token_lets_an_entry_through(
    equities: List[float],
) -> None:
    risk = _tripped_by_close_all()
    for day, equity in enumerate(equities, start=2):
        now = T0 + timedelta(days=day)
        risk.update_equity(equity, now)
        assert not risk.entries_allowed(None) and risk.size_factor() == 0.0
        if day % 5 == 0:
            risk = RiskManager(replace(risk.record), Params(), now)
    assert risk.kill_switch_tripped


def test_through_main_and_the_harness_the_kill_switch_parameter_stops_every_entry() -> None:
    def entries(parameters: dict[str, str]) -> List[str]:
        deployment = Deployment(seed=1, start=date(2024, 1, 2), end=date(2024, 1, 12), parameters=parameters).run()
        orders = deployment.algorithm.transactions.get_orders()
        return [order.tag for order in orders if order.tag.endswith("-entry")]

    assert entries({}), "without the switch the strategies enter in this window"
    assert entries({"kill-switch": "true"}) == []


def test_the_result_page_breaker_statistic_shows_a_tripped_kill_switch() -> None:
    from engine.dashboard import facts_of  # noqa: PLC0415
    from engine.protocols import EngineSnapshot  # noqa: PLC0415

    def breaker(record: RiskRecord) -> str:
        snapshot = EngineSnapshot({}, {}, {}, record, (), 0.0, True, True)
        return facts_of(snapshot, None, T0, T0, {}).breaker

    tripped = _tripped_by_close_all()
    assert breaker(tripped.record) == "CLOSE_ALL + KILL SWITCH"
    assert breaker(RiskManager(None, Params(), T0).record) == "NONE"


def test_a_tripped_kill_switch_is_said_at_every_start() -> None:
    deployment = Deployment(
        seed=1, start=date(2024, 1, 2), end=date(2024, 1, 3), parameters={"kill-switch": "true"}
    ).run()
    errors = [message for _, kind, message in deployment.algorithm.logs if kind == "error"]
    assert any("KILL SWITCH tripped" in message and "kill-switch-reset" in message for message in errors)
