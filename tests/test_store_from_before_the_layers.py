"""A store the previous version wrote loads through the migrations, and the current main.py keeps managing it.

The fixture (tests/fixtures/store-b36af16/, its README says how it was made) is the ObjectStore the code of
commit b36af16 wrote, byte for byte: position v4, order_group v3 and archive v4 records (before per-position
facts), strategy states, risk, risk days and audit, with an open LT112 position and an open 0DTE condor.

(a) The current StateStore loads every record of it: nothing quarantined, lost or stale, each migrated record
    carries exactly the values the old code stored (read back from the fixture's JSON here, independently of
    the loader), and `facts == ()` where the old schema had none.
(b) The current main.py resumes over it in the offline harness, with the broker account the old run left: the
    open positions are still managed (no duplicate entry, no orphan, no adoption, no error in the log), the
    LT112 position keeps its stored targets, and the 0DTE condor is closed by its stored stop exactly when
    the b36af16 code, resumed over the same files, closed it.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from core.contracts import parse_contract_key
from core.ports import ListLog
from core.records import GroupPurpose, PositionRecord, PositionStatus, Right, StrategyState
from persistence.keys import Namespace
from persistence.loader import LoadResult
from persistence.schemas import CURRENT_VERSION
from persistence.store import StateStore
from recovery.reconcile import claims
from tests.crash_drill import read_store
from tests.harness.brokerage import BrokerHolding
from tests.harness.lean_stub.enums import OptionRight, OptionStyle
from tests.harness.lean_stub.symbols import Market, Symbol
from tests.harness.market import SyntheticMarket
from tests.harness.object_store import SimulatedObjectStore, SimulatedStorePort
from tests.harness.simulation import Deployment

FIXTURE = Path(__file__).parent / "fixtures" / "store-b36af16"
PROJECT_ID = 424242  # the harness Deployment's project, the one the old run wrote under
NAMESPACE = Namespace.for_run(str(PROJECT_ID), True, "L-3", "")
LT112_ID = "lt112-20240103100000-f1fd"
ZERO_DTE_ID = "zero_dte-20240119103000-c06c"
CLOSED_ID = "zero_dte-20240105103000-f1fd"  # in the archive
# the old run's market path (seed 7 from 2024-01-02; a longer market has the same steps up to the old run's end).
# The old process was killed right after the 10:35 step; the new instance starts a minute later, so its first step
# (10:40) is still inside the 0DTE entry window (10:30-10:45). It runs to 2024-02-07, LT112's next entry day (the
# first Wednesday of the month), when only the open LT112 position stands between LT112 and a second entry.
SEED, MARKET_START = 7, date(2024, 1, 2)
RESUME_AT, RESUME_END = datetime(2024, 1, 19, 10, 36), date(2024, 2, 7)
STORED_PEAK = 250244.094  # risk: peak_equity and high_water_mark as the old run stored them
# what the b36af16 code did when resumed over the same files (fixture README, "What the old code did next")
OLD_STOP_DECIDED = "closing position zero_dte-20240119103000-c06c with zero_dte-20240119103000-c06c-exit-"
OLD_STOP_REASON = "stop (loss 779 >= 684)"
OLD_STOP_FILLED_AT = datetime(2024, 1, 19, 11, 30)
OLD_STOP_REALIZED = -570.00


# ----------------------------------------------------------------------------------------------- the fixture


def _store_copy(root: Path) -> Path:
    """A writable copy of the fixture under `root`, at the namespace path the old run wrote it to."""
    shutil.copytree(FIXTURE / "namespace-root", root / NAMESPACE.root)
    return root


def _raw(name: str) -> Dict[str, Any]:
    """The newest slot of record `name` as the old code wrote it (plain JSON: schema, version, seq, body)."""
    slots = [json.loads(path.read_text()) for path in (FIXTURE / "namespace-root" / "records").glob(f"{name}-?.json")]
    assert slots, f"the fixture has no file for {name}"
    return max(slots, key=lambda envelope: envelope["seq"])


def _manifest_names() -> set[str]:
    manifests = [json.loads((FIXTURE / "namespace-root" / f"manifest-{slot}.json").read_text()) for slot in "ab"]
    return set(max(manifests, key=lambda envelope: envelope["seq"])["body"]["records"])


def _state_store(root: Path, log: ListLog) -> StateStore:
    """The current StateStore over the storage folder `root`, through the port main.py gives it (simulated here)."""
    return StateStore(SimulatedStorePort(SimulatedObjectStore(root)), NAMESPACE, lambda: RESUME_AT, log)


def _load(root: Path) -> Tuple[LoadResult, ListLog]:
    log = ListLog()
    return _state_store(root, log).load_all(), log


@pytest.fixture
def loaded(tmp_path: Path) -> Tuple[LoadResult, ListLog]:
    return _load(_store_copy(tmp_path))


def _assert_position_as_stored(position: PositionRecord, body: Dict[str, Any]) -> None:
    assert position.position_id == body["position_id"]
    assert position.strategy_id == body["strategy_id"]
    assert position.status.value == body["status"]
    assert position.entry_group_id == body["entry_group_id"]
    assert position.entry_time == datetime.fromisoformat(body["entry_time"])
    assert position.entry_price == body["entry_price"]
    assert position.profit_target == body["profit_target"]
    assert position.max_loss == body["max_loss"]
    assert position.credit_received == body["credit_received"]
    assert position.realized_pnl == body["realized_pnl"]
    assert position.params_hash == body["params_hash"]
    assert position.expiry == date.fromisoformat(body["expiry"])
    assert list(position.strikes) == body["strikes"]
    stored = [(c["symbol"], c["right"], c["strike"], c["expiry"], c["quantity"]) for c in body["contracts"]]
    loaded = [(c.symbol, c.right.value, c.strike, c.expiry.isoformat(), c.quantity) for c in position.contracts]
    assert loaded == stored
    assert position.facts == ()  # the old schema had no facts: none are invented


# ----------------------------------------------------------------------------------------------- (a) loading


def test_the_fixture_holds_the_previous_schema_versions() -> None:
    """The premise: the positions, groups and archive on disk are older than the current schemas."""
    assert _raw(f"position-{LT112_ID}")["version"] == 4 < CURRENT_VERSION["position"]
    assert _raw(f"position-{ZERO_DTE_ID}")["version"] == 4
    assert _raw(f"group-{LT112_ID}-entry")["version"] == 3 < CURRENT_VERSION["order_group"]
    assert _raw("archive")["version"] == 4 < CURRENT_VERSION["archive"]


def test_every_record_of_the_old_store_loads_with_nothing_quarantined_lost_or_stale(
    loaded: Tuple[LoadResult, ListLog],
) -> None:
    result, log = loaded
    assert result.quarantined == []
    assert result.lost == []
    assert result.stale == []
    assert log.errors == []
    assert set(result.seqs) == _manifest_names()  # every record the manifest lists, nothing else
    assert sorted(result.migrated) == sorted(
        [
            "archive",
            f"group-{LT112_ID}-entry",
            f"group-{ZERO_DTE_ID}-entry",
            f"position-{LT112_ID}",
            f"position-{ZERO_DTE_ID}",
            "risk",  # risk v4 -> v5 (the kill switch, off)
        ]
    )
    for name, seq in result.seqs.items():
        assert seq == _raw(name)["seq"], f"{name}: the newest slot is the one loaded"


def test_open_positions_keep_every_stored_value_and_get_no_facts(loaded: Tuple[LoadResult, ListLog]) -> None:
    result, _ = loaded
    assert sorted(result.positions) == [LT112_ID, ZERO_DTE_ID]
    for position_id, position in result.positions.items():
        assert position.status is PositionStatus.OPEN
        _assert_position_as_stored(position, _raw(f"position-{position_id}")["body"])
    lt112 = result.positions[LT112_ID]
    assert (lt112.credit_received, lt112.profit_target, lt112.max_loss) == (256.0, pytest.approx(243.2), 512.0)


def test_order_groups_keep_legs_fills_and_plan(loaded: Tuple[LoadResult, ListLog]) -> None:
    result, _ = loaded
    assert sorted(result.groups) == [f"{LT112_ID}-entry", f"{ZERO_DTE_ID}-entry"]
    for group_id, group in result.groups.items():
        body = _raw(f"group-{group_id}")["body"]
        assert group.purpose.value == body["purpose"]
        assert group.status.value == body["status"]
        assert group.position_id == body["position_id"]
        assert (group.credit, group.max_loss, group.entry_vix) == (body["credit"], body["max_loss"], body["entry_vix"])
        assert group.decision == body["decision"]
        legs = [
            (
                leg.symbol,
                leg.quantity,
                leg.filled_quantity,
                leg.avg_fill_price,
                leg.status.value,
                list(leg.fill_keys),
                list(leg.broker_ids),
            )
            for leg in group.legs
        ]
        assert legs == [
            (
                leg["symbol"],
                leg["quantity"],
                leg["filled_quantity"],
                leg["avg_fill_price"],
                leg["status"],
                leg["fill_keys"],
                leg["broker_ids"],
            )
            for leg in body["legs"]
        ]
        assert group.facts == ()


def test_strategy_states_keep_state_history_and_last_entry_day(loaded: Tuple[LoadResult, ListLog]) -> None:
    result, _ = loaded
    assert sorted(result.strategies) == ["lt112", "zero_dte"]
    for strategy_id, record in result.strategies.items():
        body = _raw(f"strategy-{strategy_id}")["body"]
        assert record.state.value == body["state"] == "ACTIVE"
        assert record.last_entry_day == date.fromisoformat(body["last_entry_day"])
        assert (record.position_id, record.group_id) == (body["position_id"], body["group_id"])
        assert [(t.from_state.value, t.to_state.value, t.reason) for t in record.history] == [
            (t["from_state"], t["to_state"], t["reason"]) for t in body["history"]
        ]
    assert result.strategies["lt112"].last_entry_day == date(2024, 1, 3)
    assert result.strategies["zero_dte"].last_entry_day == date(2024, 1, 19)


def test_risk_keeps_peak_high_water_mark_and_loss_counters(loaded: Tuple[LoadResult, ListLog]) -> None:
    result, _ = loaded
    body = _raw("risk")["body"]
    risk = result.risk
    assert risk is not None
    assert risk.peak_equity == body["peak_equity"] == pytest.approx(STORED_PEAK)
    assert risk.high_water_mark == body["high_water_mark"] == pytest.approx(STORED_PEAK)
    assert risk.consecutive_losses == body["consecutive_losses"]
    assert risk.breaker.value == body["breaker"]
    assert list(risk.applied_position_ids) == body["applied_position_ids"] == [CLOSED_ID]
    assert [(s.strategy_id, s.consecutive_losses, s.daily_loss) for s in risk.strategy_losses] == [
        (s["strategy_id"], s["consecutive_losses"], s["daily_loss"]) for s in body["strategy_losses"]
    ]
    days = result.risk_days["2024-01"]
    stored_days = _raw("risk-days-01")["body"]["points"]
    assert [(p.day.isoformat(), p.equity, p.drawdown) for p in days.points] == [
        (p["day"], p["equity"], p["drawdown"]) for p in stored_days
    ]


def test_archive_and_audit_keep_the_closed_trade_and_the_run_history(loaded: Tuple[LoadResult, ListLog]) -> None:
    result, _ = loaded
    body = _raw("archive")["body"]
    assert sorted(result.archived_positions) == [p["position_id"] for p in body["positions"]] == [CLOSED_ID]
    _assert_position_as_stored(result.archived_positions[CLOSED_ID], body["positions"][0])
    assert result.archived_positions[CLOSED_ID].realized_pnl == pytest.approx(-1152.0)
    assert sorted(result.archived_groups) == sorted(g["group_id"] for g in body["groups"])
    assert all(group.facts == () for group in result.archived_groups.values())
    assert result.audit is not None
    assert [(e.kind, e.message) for e in result.audit.entries] == [
        (e["kind"], e["message"]) for e in _raw("audit")["body"]["entries"]
    ]


def test_a_migrated_record_saved_again_is_current_and_reads_back_unchanged(tmp_path: Path) -> None:
    root = _store_copy(tmp_path)
    log = ListLog()
    store = _state_store(root, log)
    # an unchanged record is never rewritten (StateStore.put); the first change writes it at the current version
    before = replace(store.load_all().positions[LT112_ID], note="touched after the upgrade")
    assert store.put(before)
    assert store.flush()
    written = [
        json.loads(p.read_text()) for p in (root / NAMESPACE.root / "records").glob(f"position-{LT112_ID}-?.json")
    ]
    assert max(written, key=lambda e: e["seq"])["version"] == CURRENT_VERSION["position"]
    after, reload_log = _load(root)
    assert after.positions[LT112_ID] == before
    assert (after.quarantined, after.lost, log.errors, reload_log.errors) == ([], [], [], [])


# ----------------------------------------------------------------------------------------------- (b) resuming


class ResumedDeployment(Deployment):
    """The live deployment a third start would be: algorithm ids go on from the old run's L-1 and L-2."""

    def _algorithm_id(self) -> str:
        return f"L-{len(self.runs) + 3}"


def _option(key: str) -> Symbol:
    parsed = parse_contract_key(key)
    assert parsed is not None, key
    underlying, expiry, right, strike = parsed
    option_right = OptionRight.PUT if right is Right.PUT else OptionRight.CALL
    expiry_moment = datetime.combine(expiry, datetime.min.time())
    return Symbol.create_option(underlying, Market.USA, OptionStyle.AMERICAN, option_right, strike, expiry_moment)


@dataclass
class Resumed:
    deployment: ResumedDeployment
    root: Path
    logs: List[Tuple[datetime, str, str]]
    final: LoadResult


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> Resumed:
    """The current main.py started live over a copy of the fixture, with the broker account the old run left."""
    root = _store_copy(tmp_path_factory.mktemp("old-store"))
    account = json.loads((FIXTURE / "broker-account.json").read_text())
    market = SyntheticMarket(SEED, MARKET_START, RESUME_END)
    deployment = ResumedDeployment(
        seed=SEED,
        start=MARKET_START,
        end=RESUME_END,
        storage_root=root,
        market=market,
        first_start=RESUME_AT,
        project_id=PROJECT_ID,
    )
    deployment.brokerage.cash = float(account["cash"])
    for holding in account["holdings"]:
        deployment.brokerage.holdings[_option(holding["symbol"])] = BrokerHolding(
            int(holding["quantity"]), float(holding["average_price"])
        )
    deployment.run()
    assert deployment.algorithm is not None
    return Resumed(deployment, root, list(deployment.algorithm.logs), read_store(deployment))


def test_resumed_main_loads_the_old_store_with_no_quarantine_and_no_error(resumed: Resumed) -> None:
    deployment = resumed.deployment
    assert deployment.runtime_error is None
    assert [run.algorithm_id for run in deployment.runs] == ["L-3"]  # one start, no crash
    assert [message for _, level, message in resumed.logs if level == "error"] == []
    first = [message for moment, _, message in resumed.logs if moment == RESUME_AT]
    assert any(message.startswith("state migrated to the current schema versions") for message in first)
    assert any(LT112_ID in message and ZERO_DTE_ID in message and "open positions" in message for message in first)
    assert (resumed.final.quarantined, resumed.final.lost, resumed.final.stale) == ([], [], [])
    assert not (resumed.root / NAMESPACE.root / "quarantine").exists()


def test_resumed_main_leaves_no_orphan_and_adopts_nothing(resumed: Resumed) -> None:
    deployment = resumed.deployment
    snapshot = deployment.engine.snapshot()
    claimed = {symbol: qty for symbol, qty in claims(dict(snapshot.positions), dict(snapshot.groups)).items() if qty}
    assert claimed == deployment.broker_holdings()
    kinds = Counter(entry.kind for entry in (resumed.final.audit.entries if resumed.final.audit else ()))
    assert kinds["orphan-cleaned"] == 0
    assert kinds["adopted"] == 0
    assert not deployment.open_orders()


def test_resumed_main_enters_nothing_twice(resumed: Resumed) -> None:
    """No LT112 entry while its stored position is open, not even on 2024-02-07, its next entry day; no second
    0DTE entry on 2024-01-19, not even an attempt (the restart is inside the 10:30-10:45 entry window: only the
    stored last_entry_day and open position say "entered today"); the next Friday's 0DTE entry is a new one."""
    tags = {
        (order.tag, order.submitted_at.date())
        for order in resumed.deployment.brokerage.orders.values()
        if order.tag.endswith("-entry")
    }
    entries = Counter((tag.split("-", 1)[0], day) for tag, day in tags)
    assert all(count == 1 for count in entries.values()), entries
    assert [key for key in entries if key[0] == "lt112"] == []
    assert [key for key in entries if key[1] == date(2024, 1, 19)] == []
    attempts = [
        m
        for t, _, m in resumed.logs
        if m.startswith("engine: lt112 entry")
        or (t.date() == date(2024, 1, 19) and m.startswith("engine: zero_dte entry"))
    ]
    assert attempts == []
    assert ("zero_dte", date(2024, 1, 26)) in entries  # it trades again a week later: not stuck in ACTIVE


def test_resumed_main_closes_the_0dte_condor_by_its_stored_stop_as_the_old_code_did(resumed: Resumed) -> None:
    decided = [m for _, _, m in resumed.logs if m.startswith(f"engine: {OLD_STOP_DECIDED}")]
    assert len(decided) == 1
    assert decided[0].endswith(OLD_STOP_REASON)
    closed = resumed.final.archived_positions[ZERO_DTE_ID]
    assert closed.status is PositionStatus.CLOSED
    assert closed.exit_time == OLD_STOP_FILLED_AT
    assert closed.realized_pnl == pytest.approx(OLD_STOP_REALIZED, abs=0.005)
    assert (closed.credit_received, closed.profit_target, closed.max_loss) == (684.0, 342.0, 684.0)
    exits = [g for g in resumed.final.archived_groups.values() if g.position_id == ZERO_DTE_ID]
    assert sorted(g.purpose for g in exits) == sorted([GroupPurpose.ENTRY, GroupPurpose.EXIT])
    held = resumed.deployment.broker_holdings()
    assert not [key for key in held if "-20240119-" in key], "nothing of the condor was held into expiry"


def test_resumed_main_keeps_the_lt112_position_with_its_stored_targets(resumed: Resumed) -> None:
    snapshot = resumed.deployment.engine.snapshot()
    position = snapshot.positions[LT112_ID]
    assert position.status is PositionStatus.OPEN
    _assert_position_as_stored(position, _raw(f"position-{LT112_ID}")["body"])
    strategy = snapshot.strategies["lt112"]
    assert strategy.state is StrategyState.ACTIVE
    assert (strategy.position_id, strategy.last_entry_day) == (LT112_ID, date(2024, 1, 3))
    assert resumed.deployment.broker_holdings() == {
        "SPY-20240419-P-380": -2,
        "SPY-20240419-P-445": -1,
        "SPY-20240419-P-448": 1,
    }


def test_resumed_main_keeps_the_risk_peak_and_high_water_mark(resumed: Resumed) -> None:
    risk = resumed.deployment.engine.snapshot().risk
    assert risk.high_water_mark >= STORED_PEAK  # never lowered by the restart or the migration
    assert risk.peak_equity >= STORED_PEAK
    assert CLOSED_ID in risk.applied_position_ids  # the old loss is not counted again, nor forgotten
    assert risk.applied_position_ids.count(CLOSED_ID) == 1
