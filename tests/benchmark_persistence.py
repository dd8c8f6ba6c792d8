"""Persistence benchmark: `python -m tests.benchmark_persistence [--quick]`.

Prints, each beside a plain `json.dumps` + dict write and a sqlite3 commit of the same data measured in the
same run (sqlite3: a temporary FILE with default settings, journal_mode=DELETE, synchronous=FULL, because an
in-memory database is not durable and would not be a fair stand-in for a store that must survive a crash):
- save latency p50/p99 of one strategy transition (put(immediate=True) into the simulated LEAN store);
- the cost of a scheduled save when nothing is dirty;
- recovery (load_all) time for 10, 1,000 and 10,000 order groups;
- stored bytes and file count after 1 and 12 simulated months (retiring finished cycles).
Targets: transition p99 < 100 us, idle scheduled save < 5 us, 10,000 groups < 1 s. Timings are printed,
never asserted (they depend on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Callable, Dict, List, Tuple

from persistence.codec import to_body
from persistence.keys import Namespace
from persistence.ports import ListLog
from persistence.records import (
    ContractRecord,
    GroupPurpose,
    GroupStatus,
    LegRecord,
    LegStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    Right,
    StrategyState,
    StrategyStateRecord,
    TransitionEntry,
)
from persistence.store import StateStore
from tests.harness.object_store import QC_BASE_MAX_FILES, QC_BASE_MAX_SIZE, SimulatedObjectStore, SimulatedStorePort

NS = Namespace.for_run("-123456789", True, "L-bench", "")
T0 = datetime(2024, 1, 2, 14, 30)


def _store(clock: Callable[[], datetime] = lambda: T0) -> Tuple[StateStore, SimulatedObjectStore]:
    backend = SimulatedObjectStore(max_size=QC_BASE_MAX_SIZE, max_files=QC_BASE_MAX_FILES * 20)
    return StateStore(SimulatedStorePort(backend), NS, clock, ListLog()), backend


def _strategy_sequence(count: int) -> List[StrategyStateRecord]:
    """Successive records of one strategy, built the way StrategyMachine.transition builds them: each keeps the
    previous record's (bounded, 20) history entries and appends one, so the entry objects are shared."""
    states = (StrategyState.WAITING, StrategyState.ENTERING, StrategyState.ACTIVE, StrategyState.EXITING)
    records: List[StrategyStateRecord] = []
    history: Tuple[TransitionEntry, ...] = ()
    for index in range(count):
        records.append(
            StrategyStateRecord(
                "lt112",
                states[index % 4],
                states[(index - 1) % 4],
                T0 + timedelta(minutes=index),
                f"step {index}",
                history,
            )
        )
        entry = TransitionEntry(states[index % 4], states[(index + 1) % 4], T0 + timedelta(minutes=index), "step")
        history = (*history, entry)[-20:]
    return records


def _group(group_id: str, legs: int = 3, status: GroupStatus = GroupStatus.FILLED) -> OrderGroupRecord:
    leg_records = tuple(
        LegRecord(
            f"SPY-20240119-P-{400 + i}",
            "SPY",
            Right.PUT,
            400.0 + i,
            date(2024, 1, 19),
            -1 - i,
            -1 - i,
            1.5,
            LegStatus.FILLED,
            (i + 1,),
            (f"B{i}",),
            (f"run/{i}/1",),
        )
        for i in range(legs)
    )
    return OrderGroupRecord(group_id, "lt112", GroupPurpose.ENTRY, "p-" + group_id, leg_records, status, T0, T0, "run")


def _position(position_id: str, group_id: str) -> PositionRecord:
    contract = ContractRecord("SPY-20240119-P-400", Right.PUT, 400.0, date(2024, 1, 19), -2)
    return PositionRecord(
        position_id, "lt112", group_id, T0, -1.5, (contract,), date(2024, 1, 19), (400.0,), 14.0, 150.0, 300.0, "abc"
    )


def _percentiles(samples: List[float]) -> Tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Sqlite:
    """The sqlite3 comparison: one table name -> JSON text, committed per write."""

    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(suffix=".sqlite3")
        os.close(handle)
        self.db = sqlite3.connect(self.path)
        self.db.execute("CREATE TABLE records (name TEXT PRIMARY KEY, body TEXT)")
        self.db.commit()

    def write(self, name: str, text: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO records VALUES (?, ?)", (name, text))
        self.db.commit()

    def close(self) -> int:
        self.db.close()
        size = os.path.getsize(self.path)
        os.unlink(self.path)
        return size


def bench_transitions(count: int) -> Dict[str, Tuple[float, float]]:
    store, _ = _store()
    store.load_all()
    records = _strategy_sequence(count)
    ours: List[float] = []
    for record in records:
        start = time.perf_counter()
        store.put(record)
        ours.append(time.perf_counter() - start)
        if len(ours) % 50 == 0:
            store.flush()  # the write-ahead flush happens outside the timed region, as in the engine
    plain: Dict[str, str] = {}
    plain_times: List[float] = []
    for record in records:
        start = time.perf_counter()
        plain["strategy-lt112"] = json.dumps(to_body(record))
        plain_times.append(time.perf_counter() - start)
    sqlite = Sqlite()
    sqlite_times: List[float] = []
    for record in records[: max(50, count // 10)]:
        start = time.perf_counter()
        sqlite.write("strategy-lt112", json.dumps(to_body(record)))
        sqlite_times.append(time.perf_counter() - start)
    sqlite.close()
    return {"ours": _percentiles(ours), "plain": _percentiles(plain_times), "sqlite": _percentiles(sqlite_times)}


def bench_idle(count: int) -> Dict[str, float]:
    store, _ = _store()
    store.load_all()
    records = [_group(f"g{i}") for i in range(20)] + [_strategy_sequence(4)[-1]]
    for record in records:
        store.put(record, immediate=False)
    store.save_dirty()
    start = time.perf_counter()
    for _ in range(count):
        store.save_dirty()
    ours = (time.perf_counter() - start) / count
    # a store without dirty tracking rewrites everything on every scheduled save
    plain: Dict[str, str] = {}
    start = time.perf_counter()
    for _ in range(max(1, count // 100)):
        for record in records:
            plain[record.record_name] = json.dumps(to_body(record))
    plain_cost = (time.perf_counter() - start) / max(1, count // 100)
    sqlite = Sqlite()
    start = time.perf_counter()
    for _ in range(5):
        for record in records:
            sqlite.db.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?)", (record.record_name, json.dumps(to_body(record)))
            )
        sqlite.db.commit()
    sqlite_cost = (time.perf_counter() - start) / 5
    sqlite.close()
    return {"ours": ours, "plain": plain_cost, "sqlite": sqlite_cost}


def bench_recovery(groups: int) -> Dict[str, float]:
    store, backend = _store()
    store.load_all()
    for index in range(groups):
        store.put(_group(f"g{index}"), immediate=False)
    store.save_dirty()
    store.flush()
    restarted = backend.crash()
    fresh = StateStore(SimulatedStorePort(restarted), NS, lambda: T0, ListLog())
    start = time.perf_counter()
    result = fresh.load_all()
    ours = time.perf_counter() - start
    assert len(result.groups) == groups, "benchmark sanity: every group loads"
    texts = {f"group-g{i}": json.dumps(to_body(_group(f"g{i}"))) for i in range(groups)}
    start = time.perf_counter()
    plain = {name: json.loads(text) for name, text in texts.items()}
    plain_cost = time.perf_counter() - start
    assert len(plain) == groups
    sqlite = Sqlite()
    sqlite.db.executemany("INSERT INTO records VALUES (?, ?)", texts.items())
    sqlite.db.commit()
    start = time.perf_counter()
    rows = {name: json.loads(body) for name, body in sqlite.db.execute("SELECT name, body FROM records")}
    sqlite_cost = time.perf_counter() - start
    assert len(rows) == groups
    sqlite.close()
    return {"ours": ours, "plain": plain_cost, "sqlite": sqlite_cost}


def simulate_year(months: int) -> Dict[int, Dict[str, int]]:
    """Two LT112 cycles a month, a 0DTE cycle every Friday, scheduled saves every 5 minutes of the session,
    audits, finished cycles retired. Returns {month: figures} after every month."""
    now = [datetime(2024, 1, 1, 9, 30)]
    store, backend = _store(lambda: now[0])
    store.load_all()
    plain_keys: Dict[str, int] = {}  # naive: one key per record, never retired
    sqlite = Sqlite()
    figures: Dict[int, Dict[str, int]] = {}
    cycle = 0

    def record(item: object, immediate: bool = True) -> None:
        store.put(item, immediate=immediate)  # type: ignore[arg-type]
        text = json.dumps(to_body(item))
        plain_keys[item.record_name] = len(text)  # type: ignore[attr-defined]
        sqlite.db.execute("INSERT OR REPLACE INTO records VALUES (?, ?)", (item.record_name, text))  # type: ignore[attr-defined]

    def run_cycle(strategy_id: str, legs: int) -> None:
        nonlocal cycle
        cycle += 1
        entry, exit_ = f"{strategy_id}-{cycle}-e", f"{strategy_id}-{cycle}-x"
        state = StrategyStateRecord(strategy_id, StrategyState.ENTERING, StrategyState.WAITING, now[0], "entry")
        record(state)
        record(replace(_group(entry, legs), status=GroupStatus.PENDING))
        store.flush()
        record(_group(entry, legs))
        record(_position(f"p{cycle}", entry))
        record(replace(state, state=StrategyState.ACTIVE, previous=StrategyState.ENTERING))
        record(replace(_group(exit_, legs), purpose=GroupPurpose.EXIT))
        record(replace(_position(f"p{cycle}", entry), status=PositionStatus.CLOSED, realized_pnl=120.0))
        record(replace(state, state=StrategyState.WAITING, previous=StrategyState.CLOSED))
        store.audit("cycle", f"{strategy_id} cycle {cycle} closed", f"p{cycle}")
        store.retire(f"group-{entry}", f"group-{exit_}", f"position-p{cycle}")
        store.flush()

    day = date(2024, 1, 1)
    for month in range(1, months + 1):
        while day.month == ((month - 1) % 12) + 1 and day.year == 2024 + (month - 1) // 12:
            if day.weekday() < 5:
                if day.day in (3, 17) or (day.day in (4, 18) and day.weekday() == 0):
                    run_cycle("lt112", 3)
                if day.weekday() == 4:
                    run_cycle("zero_dte", 4)
                for slot in range(78):  # every 5 minutes of the session
                    now[0] = datetime.combine(day, datetime.min.time()) + timedelta(hours=9, minutes=30 + 5 * slot)
                    if slot == 75:
                        store.audit("eod", f"end of day {day.isoformat()}")
                    store.save_dirty()
                store.flush()
            day += timedelta(days=1)
        sqlite.db.commit()
        if True:  # every month, so the plateau is visible
            figures[month] = {
                "bytes": backend.stored_bytes(),
                "files": backend.stored_files(),
                "plain_bytes": sum(plain_keys.values()),
                "plain_files": len(plain_keys),
                "sqlite_bytes": os.path.getsize(sqlite.path),
            }
    sqlite.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, 10 and 1,000 groups only")
    args = parser.parse_args()
    us = 1e6
    transitions = bench_transitions(500 if args.quick else 5000)
    idle = bench_idle(20_000 if args.quick else 200_000)
    sizes = (10, 1_000) if args.quick else (10, 1_000, 10_000)
    recovery = {n: bench_recovery(n) for n in sizes}
    year = simulate_year(12)
    plateau = next(
        (m for m in sorted(year) if all(year[n]["bytes"] <= year[m]["bytes"] * 1.05 for n in year if n > m)), 12
    )

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print("persistence benchmark (sqlite3 = temp file, default journal_mode=DELETE / synchronous=FULL)")
    print(f"{'figure':<38}{'StateStore':>16}{'json.dumps+dict':>18}{'sqlite3 commit':>18}   target")
    t = transitions
    print(
        f"{'transition save p50 (us)':<38}{t['ours'][0] * us:>16.1f}{t['plain'][0] * us:>18.1f}"
        f"{t['sqlite'][0] * us:>18.1f}"
    )
    print(
        f"{'transition save p99 (us)':<38}{t['ours'][1] * us:>16.1f}{t['plain'][1] * us:>18.1f}"
        f"{t['sqlite'][1] * us:>18.1f}   < 100 us {verdict(t['ours'][1] * us < 100)}"
    )
    print(
        f"{'scheduled save, nothing dirty (us)':<38}{idle['ours'] * us:>16.3f}{idle['plain'] * us:>18.1f}"
        f"{idle['sqlite'] * us:>18.1f}   < 5 us {verdict(idle['ours'] * us < 5)}"
    )
    for n, figures in recovery.items():
        target = f"   < 1 s {verdict(figures['ours'] < 1.0)}" if n == 10_000 else ""
        print(
            f"{f'recovery, {n:,} order groups (ms)':<38}{figures['ours'] * 1e3:>16.1f}"
            f"{figures['plain'] * 1e3:>18.1f}{figures['sqlite'] * 1e3:>18.1f}{target}"
        )
    for month, figures in year.items():
        if month not in (1, 12):
            continue
        print(
            f"{f'stored after month {month}: bytes':<38}{figures['bytes']:>16,}{figures['plain_bytes']:>18,}"
            f"{figures['sqlite_bytes']:>18,}   <= 50 MB {verdict(figures['bytes'] <= QC_BASE_MAX_SIZE)}"
        )
        print(
            f"{f'stored after month {month}: files':<38}{figures['files']:>16,}{figures['plain_files']:>18,}"
            f"{1:>18,}   <= 1,000 {verdict(figures['files'] <= QC_BASE_MAX_FILES)}"
        )
    by_month = ", ".join(f"{m}: {year[m]['bytes'] // 1024} KiB" for m in sorted(year))
    print(
        f"stored bytes by month (StateStore): {by_month}"
        f" -> within 5 % of their final size from month {plateau} on (history, audit and archive are capped)"
    )
    print("plain = one key per record, never retired, rewritten in full on every scheduled save (no dirty tracking)")


if __name__ == "__main__":
    main()
