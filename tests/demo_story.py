"""Plain-language story of one demo run (tests/demo.py): what was running, where it crashed, what the store
held, what recovery decided and why, what is estimated, and how it ended.

Everything here reads records, the harness's broker and the restarted algorithm's log; nothing changes them.
Times are New York time (the algorithm's `time`) unless marked UTC; the audit trail is kept in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Dict, Iterable, List, Sequence
from zoneinfo import ZoneInfo

from core.records import (
    AuditEntry,
    GroupPurpose,
    GroupStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    StrategyState,
)
from persistence.loader import LoadResult
from tests.harness.faults import CrashPoint

NEW_YORK = ZoneInfo("America/New_York")
STRATEGY_NAMES = {
    "lt112": "LT112 (120-day put structure)",
    "zero_dte": "Friday 0DTE (same-day spreads)",
    "put_credit_spread": "Monthly put credit spread (45-day, the strategy API's example)",
}
_CONTRACT = re.compile(r"\b([A-Z]+)-(\d{4})(\d{2})(\d{2})-([PC])-(\d+(?:\.\d+)?)\b")
_IN_FLIGHT = (GroupStatus.PENDING, GroupStatus.SUBMITTED, GroupStatus.INCOMPLETE)

# what each audit kind means to a reader, and whether it is a normal recovery step or something wrong
AUDIT_MEANING = {
    "missed-fill": "filled at the broker before the store recorded it (at the crash or while down); booked from "
    "the broker's holdings",
    "fill-priced": "a fill learned from holdings has no price in LEAN; priced at the first quote's mid (estimate)",
    "adopted": "the broker held a contract no record knew; recovery took it over as a position to close",
    "orphan-cleaned": "a saved position the broker no longer holds; closed in the records",
    "quantity-mismatch": "the broker holds a different quantity than the records; the broker's figure wins",
    "group-fill-mismatch": "an order group's fills disagree with holdings; corrected from holdings",
    "recovery": "an incomplete order group: recovery decided to complete or roll it back",
    "rebind": "an order group still working at the crash, re-attached to the orders the broker kept",
    "lost": "a record the manifest lists could not be read; holdings decide",
    "stale": "a record loaded at an older version than last saved",
    "quarantine": "stored data that failed validation was copied aside and ignored",
}


def contract_words(text: str) -> str:
    """'SPY-20240105-C-473' -> 'SPY 473 call (exp 01-05)' everywhere in a message."""

    def words(match: re.Match[str]) -> str:
        ticker, _, month, day, right, strike = match.groups()
        strike_text = strike[:-2] if strike.endswith(".0") else strike
        return f"{ticker} {strike_text} {'put' if right == 'P' else 'call'} (exp {month}-{day})"

    return _CONTRACT.sub(words, text)


def strategy_name(strategy_id: str) -> str:
    return STRATEGY_NAMES.get(strategy_id, strategy_id)


def legs_text(group: OrderGroupRecord) -> str:
    parts = []
    for leg in group.legs:
        side = "buy" if leg.quantity > 0 else "sell"
        done = f"{abs(leg.filled_quantity)} of {abs(leg.quantity)} filled"
        parts.append(f"{side} {contract_words(leg.symbol)}: {done}")
    return "; ".join(parts)


def crash_words(point: CrashPoint) -> str:
    """The crash point in a reader's words (the harness's kinds: store-save, store-flush, order-submit)."""
    detail = point.detail
    record = detail.rsplit("/", 1)[-1].removesuffix(".json")
    record = re.sub(r"-[ab]$", "", record)
    if point.kind == "order-submit":
        moment, _, tag = detail.partition(" ")
        if moment == "before":
            return f"just before the broker received the orders of {tag}"
        return f"just after the broker accepted the orders of {tag}, before the algorithm saw its order tickets"
    if point.kind == "store-save":
        return f"while saving the record {record} (the save was lost with the process)"
    return f"while the ObjectStore was writing the record {record} to disk (it and the keys after it were lost)"


@dataclass
class BrokerView:
    """The broker account at one moment: contract -> signed quantity, and open orders (broker id, tag)."""

    holdings: Dict[str, int] = field(default_factory=dict)
    open_orders: List[tuple[str, str]] = field(default_factory=list)


def open_contracts(positions: Iterable[PositionRecord]) -> Dict[str, int]:
    held: Dict[str, int] = {}
    for position in positions:
        if position.status is PositionStatus.CLOSED:
            continue
        for contract in position.contracts:
            held[contract.symbol] = held.get(contract.symbol, 0) + contract.quantity
    return held


def in_flight(disk: LoadResult, broker: BrokerView) -> List[str]:
    """What was moving at the crash: unfinished order groups on disk, open orders at the broker, holdings the
    saved positions do not account for. Empty: a restart has nothing to recover (the demo picks another point)."""
    moving = [
        f"order group {g.group_id} saved as {g.status.value}" for g in disk.groups.values() if g.status in _IN_FLIGHT
    ]
    moving += [f"open order {broker_id} ({tag}) at the broker" for broker_id, tag in broker.open_orders]
    saved = open_contracts(disk.positions.values())
    claimed = dict(saved)
    for group in disk.groups.values():
        for leg in group.legs:
            if group.status in _IN_FLIGHT:
                claimed[leg.symbol] = claimed.get(leg.symbol, 0) + leg.quantity
    unexplained = {s: q for s, q in broker.holdings.items() if saved.get(s, 0) != q}
    moving += [f"broker holds {q:+d} {contract_words(s)} that no saved position lists" for s, q in unexplained.items()]
    moving += [
        f"the store still lists {q:+d} {contract_words(s)} in an open position; the broker no longer holds it"
        for s, q in saved.items()
        if broker.holdings.get(s, 0) != q and s not in unexplained
    ]
    return moving


def running_lines(disk: LoadResult) -> List[str]:
    lines = []
    for strategy_id, record in sorted(disk.strategies.items()):
        line = f"{strategy_name(strategy_id)}: {_state_words(record.state)} since {record.changed_at:%a %m-%d %H:%M}"
        lines.append(line)
        position = disk.positions.get(record.position_id or "")
        if position is not None and position.status is not PositionStatus.CLOSED:
            contracts = ", ".join(f"{c.quantity:+d} {contract_words(c.symbol)}" for c in position.contracts)
            lines.append(f"    open position: {contracts}")
    return lines


def _state_words(state: StrategyState) -> str:
    return {
        StrategyState.WAITING: "flat, waiting for its next entry",
        StrategyState.ENTERING: "entering a trade (orders being placed)",
        StrategyState.ACTIVE: "holding a position",
        StrategyState.EXITING: "closing its position",
        StrategyState.CLOSED: "just finished a trade",
        StrategyState.ERROR: "stopped on an error",
        StrategyState.RECOVERING: "under recovery",
    }.get(state, state.value)


def store_lines(disk: LoadResult) -> List[str]:
    lines = []
    for group in sorted(disk.groups.values(), key=lambda g: g.created_at):
        if group.status not in _IN_FLIGHT:
            continue
        what = {GroupPurpose.ENTRY: "entry", GroupPurpose.EXIT: "exit"}.get(group.purpose, group.purpose.value.lower())
        written = "written ahead, no order placed yet" if group.status is GroupStatus.PENDING else "orders placed"
        lines.append(f"{strategy_name(group.strategy_id)} {what} order group {group.status.value} ({written}):")
        lines.append(f"    {legs_text(group)}")
    if disk.risk is not None:
        risk = disk.risk
        breaker = "no circuit breaker tripped" if risk.breaker.value == "NONE" else f"breaker {risk.breaker.value}"
        streak = f"{risk.consecutive_losses} losses in a row"
        lines.append(f"risk limits: peak equity {risk.peak_equity:,.0f}, {streak}, {breaker}")
    if disk.lost or disk.stale or disk.quarantined:
        lines.append(f"lost records {disk.lost}, older than expected {disk.stale}, quarantined {len(disk.quarantined)}")
    return lines


def broker_lines(disk: LoadResult, at_crash: BrokerView, at_restart: BrokerView) -> List[str]:
    """What the broker knew that the store did not: at the crash, and what filled while the algorithm was down."""
    lines = [f"open orders at the crash: {len(at_crash.open_orders)}"]
    differences = [
        line for line in in_flight(disk, at_crash) if line.startswith(("broker holds", "the store still lists"))
    ]
    if differences:
        lines.append("already different from the store at the crash (fills the store had not recorded yet):")
        lines += [f"    {line}" for line in differences]
    moved = {
        s: at_restart.holdings.get(s, 0) - at_crash.holdings.get(s, 0)
        for s in set(at_crash.holdings) | set(at_restart.holdings)
        if at_restart.holdings.get(s, 0) != at_crash.holdings.get(s, 0)
    }
    if moved:
        lines.append("filled while the algorithm was down:")
        lines += [f"    {q:+d} {contract_words(s)}" for s, q in sorted(moved.items())]
    else:
        lines.append("nothing filled while the algorithm was down")
    return lines


def to_utc(new_york: datetime) -> datetime:
    """Naive New York time (the algorithm's `time`) -> naive UTC (the audit trail's clock, LEAN's `utc_time`)."""
    return new_york.replace(tzinfo=NEW_YORK).astimezone(UTC).replace(tzinfo=None)


def to_new_york(utc: datetime) -> datetime:
    return utc.replace(tzinfo=UTC).astimezone(NEW_YORK).replace(tzinfo=None)


def recovery_entries(entries: Sequence[AuditEntry], restart_ny: datetime, hours: int = 1) -> List[AuditEntry]:
    start = to_utc(restart_ny)
    return [e for e in entries if start <= e.at <= start + timedelta(hours=hours)]


def recovery_lines(
    entries: Sequence[AuditEntry], logs: Sequence[tuple[datetime, str, str]], restart: datetime
) -> List[str]:
    """Each recovery step once, with what it means (identical messages counted); then the start-up log's
    decisions in plain words."""
    lines: List[str] = []
    by_kind: Dict[str, Dict[str, int]] = {}
    for entry in entries:
        if entry.kind == "run-start":  # the restart itself, told in the section's title
            continue
        text = f"{to_new_york(entry.at):%H:%M} {contract_words(entry.message)}"
        messages = by_kind.setdefault(entry.kind, {})
        messages[text] = messages.get(text, 0) + 1
    for kind, messages in by_kind.items():
        lines.append(f"{kind}: {AUDIT_MEANING.get(kind, 'see the audit trail')}")
        lines += [f"    {text}" + (f" (x{count})" if count > 1 else "") for text, count in messages.items()]
    for moment, _level, message in logs:
        if moment > restart + timedelta(hours=1):
            break
        if any(word in message for word in ("re-bound", "RECOVERY", "opened:", "closed, realized", "refused")):
            lines.append(f"{moment:%H:%M} {_plain(message)}")
    if not lines:
        lines.append("nothing to book: the store and the broker agreed; the strategies simply carried on")
    return lines


def _plain(message: str) -> str:
    message = contract_words(message.removeprefix("engine: "))
    message = re.sub(
        r"re-bound to this run with (\d+) live order\(s\)",
        r"re-attached to the new run (\1 of its orders still open at the broker; LEAN gives reloaded orders new ids)",
        message,
    )
    opened = re.match(r"position (\S+) opened: \[.*\] at (-?[\d.]+)$", message)
    if opened:
        price = float(opened.group(2))
        kind = "credit" if price < 0 else "debit"
        message = f"position {opened.group(1)} built from those fills: a net {kind} of {abs(price):.2f} per unit"
    return message


def estimated_lines(entries: Sequence[AuditEntry]) -> List[str]:
    """Prices the records hold that no fill event gave: LEAN reports no price for fills while down."""
    lines = []
    for entry in entries:
        message = contract_words(entry.message)
        if entry.kind == "missed-fill" and "unknown price" not in entry.message:
            lines.append(f"{message}: the broker's average price for the holding, exact when one fill made it")
        elif entry.kind == "fill-priced":
            lines.append(f"{message}: a quote, not a fill, so the trade's realized P&L is an estimate")
    if lines:
        lines.append("the drawdown breakers use the broker's equity, so they stay exact")
    else:
        lines.append("nothing: every fill after the restart came with its own order event and price")
    return lines
