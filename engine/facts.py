"""Pure helpers of the trading engine: ids, positions from fills, realized P&L, the state a strategy should be
in given its records. No store, no broker, no clock: everything comes in as arguments.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Collection, Dict, Iterable, Mapping, Optional, Set, Tuple

from core.contracts import OPTION_MULTIPLIER, SHARE_EXPIRY, SHARE_RIGHT, SHARE_STRIKE, is_share_key, parse_contract_key
from core.order_groups import is_in_flight, net_filled_legs
from core.ports import LegSpec
from core.records import (
    ContractRecord,
    Fact,
    GroupPurpose,
    LegStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    StrategyState,
)
from recovery.decisions import safe_order
from recovery.startup import PositionToBuild
from strategies.base import position_units

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_id_part(text: str) -> str:
    """Ids become ObjectStore key parts and order tags: keep to [A-Za-z0-9_-]."""
    return _KEY_UNSAFE.sub("_", text) or "x"


def new_record_id(prefix: str, now: datetime, run_id: str, taken: Collection[str]) -> str:
    """A position/group id unique across runs: time to the second + a short hash of the run, then a counter.

    The run hash keeps two runs that act in the same second apart (a backtest re-run over a resumed store);
    the counter keeps two ids of one run apart. `taken` holds every id the engine already knows.
    """
    run_hash = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:4]
    base = f"{safe_id_part(prefix)}-{now:%Y%m%d%H%M%S}-{run_hash}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# ----------------------------------------------------------------------------------------------- entry plan facts


@dataclass(frozen=True)
class PlanFacts:
    profit_target: float
    max_loss: float
    entry_vix: Optional[float]
    credit: Optional[float] = None  # planned, at mid (see OrderGroupRecord.credit)
    credit_symbols: Tuple[str, ...] = ()
    stop_cap: Optional[float] = None
    facts: Tuple[Fact, ...] = ()  # the strategy's own (OrderGroupRecord.facts)


def plan_facts_of(entry: Optional[OrderGroupRecord]) -> Optional[PlanFacts]:
    """The plan facts an ENTRY group was saved with (before its orders); None when they are not there (a group
    from before v2 without the old note, or none at all)."""
    if entry is None or entry.profit_target is None or entry.max_loss is None:
        return None
    return PlanFacts(
        entry.profit_target,
        entry.max_loss,
        entry.entry_vix,
        entry.credit,
        entry.credit_symbols,
        entry.stop_cap,
        entry.facts,
    )


def credit_received(opening: Iterable[OrderGroupRecord], symbols: Collection[str]) -> Optional[float]:
    """The credit the entry's fills of `symbols` brought in (account currency, positive = received); None when
    there are no such symbols or one of their fills has no price."""
    if not symbols:
        return None
    total = 0.0
    for group in opening:
        for leg in group.legs:
            if leg.symbol in symbols and leg.filled_quantity:
                if leg.avg_fill_price <= 0:
                    return None
                total -= leg.filled_quantity * leg.avg_fill_price * OPTION_MULTIPLIER
    return total


def targets_from_fill(facts: PlanFacts, received: Optional[float]) -> Tuple[float, float]:
    """(profit target, stop) re-based on the credit actually received: the plan's targets x received / planned
    credit, the stop capped at the plan's cap. Without a usable credit (unknown, or a fill for no credit) the
    plan's figures stand (capped)."""
    target, stop = facts.profit_target, facts.max_loss
    if facts.credit is not None and facts.credit > 0 and received is not None and received > 0:
        ratio = received / facts.credit
        target, stop = target * ratio, stop * ratio
    if facts.stop_cap is not None and facts.stop_cap > 0:
        stop = min(stop, facts.stop_cap)
    return target, stop


# ----------------------------------------------------------------------------------------------- positions


def position_from_build(
    build: PositionToBuild,
    facts: Optional[PlanFacts],
    params_hash: str,
    entry_time: datetime,
    received: Optional[float] = None,
) -> PositionRecord:
    """The position record of a finished entry (recovery.startup lists it). Unknown plan facts (lost with a
    crash) are recorded as 0 and said in the note: the exit rules then rely on their DTE/time rules."""
    contracts = tuple(
        ContractRecord(leg.symbol, leg.right, leg.strike, leg.expiry, leg.quantity)
        for leg in sorted(build.legs, key=lambda leg: leg.symbol)
    )
    note = "" if facts is not None else "entry plan targets unknown (lost before the fill was booked)"
    target, stop = targets_from_fill(facts, received) if facts is not None else (0.0, 0.0)
    return PositionRecord(
        position_id=build.position_id,
        strategy_id=build.strategy_id,
        entry_group_id=build.entry_group_id,
        entry_time=entry_time,
        entry_price=build.entry_price,
        contracts=contracts,
        expiry=min(c.expiry for c in contracts),
        strikes=tuple(sorted({c.strike for c in contracts})),
        entry_vix=facts.entry_vix if facts else None,
        profit_target=target,
        max_loss=stop,
        params_hash=params_hash,
        note=note,
        credit_received=received,
        facts=facts.facts if facts is not None else (),
    )


def facts_of(values: Mapping[str, float]) -> Tuple[Fact, ...]:
    """A strategy's plan facts as stored: one Fact per name, sorted by name (a record has one form)."""
    return tuple(Fact(name, float(value)) for name, value in sorted(values.items()))


def add_note(note: str, text: str) -> str:
    """The position note with `text` added once."""
    if text in note:
        return note
    return f"{note}; {text}" if note else text


def unpriced_fills(groups: Iterable[OrderGroupRecord]) -> Set[Tuple[str, str]]:
    """(group id, contract) of every filled leg without a price: a fill learned from holdings that could not be
    priced. Option fills are never at 0.00 (an expiry is not booked on our groups), so 0 means unknown."""
    return {
        (g.group_id, leg.symbol) for g in groups for leg in g.legs if leg.filled_quantity and leg.avg_fill_price <= 0
    }


def with_leg_price(group: OrderGroupRecord, symbol: str, price: float, now: datetime) -> OrderGroupRecord:
    """The group with the average fill price of its leg on `symbol` set (for a fill that had none)."""
    legs = tuple(replace(leg, avg_fill_price=price) if leg.symbol == symbol else leg for leg in group.legs)
    return replace(group, legs=legs, updated_at=now)


def realized_pnl(position_id: str, groups: Mapping[str, OrderGroupRecord]) -> float:
    """Cash in minus cash out over every group of the position (entry, completion, rollback, settlements,
    exits), in account currency. Fills are signed (+ buy): buying costs, selling earns; a contract counts x100,
    a share (delivered by an assignment, sold by the exit) x1. An adopted position has no entry group, so its
    figure is the exit's cash flow only (its entry price is unknown)."""
    option_flow = share_flow = 0.0
    for group in groups.values():
        if group.position_id == position_id:
            for leg in group.legs:
                if is_share_key(leg.symbol):
                    share_flow += leg.filled_quantity * leg.avg_fill_price
                else:
                    option_flow += leg.filled_quantity * leg.avg_fill_price
    return -(option_flow * OPTION_MULTIPLIER + share_flow)


def multiplier_of(symbol: str) -> int:
    return 1 if is_share_key(symbol) else OPTION_MULTIPLIER


_HOLDING_CHANGES = frozenset({GroupPurpose.SETTLEMENT, GroupPurpose.REDUCE})


def position_holdings(position: PositionRecord, groups: Iterable[OrderGroupRecord]) -> Dict[str, int]:
    """What the position holds now: its contracts plus what its SETTLEMENT groups did (contracts closed by
    exercise, assignment or expiry, shares delivered) and its REDUCE groups closed (partial closes). Keys that
    net to zero are left out."""
    held = {c.symbol: c.quantity for c in position.contracts}
    for group in groups:
        if group.position_id == position.position_id and group.purpose in _HOLDING_CHANGES:
            for leg in group.legs:
                held[leg.symbol] = held.get(leg.symbol, 0) + leg.filled_quantity
    return {symbol: quantity for symbol, quantity in held.items() if quantity}


def is_settled(position: PositionRecord, groups: Iterable[OrderGroupRecord]) -> bool:
    """True when a SETTLEMENT group touched the position: its structure is broken and what is left is closed."""
    return any(g.position_id == position.position_id and g.purpose is GroupPurpose.SETTLEMENT for g in groups)


def settled_view(position: PositionRecord, groups: Iterable[OrderGroupRecord]) -> PositionRecord:
    """The position with its contracts replaced by what it holds now (position_holdings), shares included,
    e.g. to build the legs that flatten it. Never saved: the record keeps the contracts it was entered with."""
    known = {c.symbol: c for c in position.contracts}
    contracts = []
    for symbol, quantity in sorted(position_holdings(position, groups).items()):
        if symbol in known:
            contracts.append(replace(known[symbol], quantity=quantity))
        elif is_share_key(symbol):
            contracts.append(ContractRecord(symbol, SHARE_RIGHT, SHARE_STRIKE, SHARE_EXPIRY, quantity))
        elif (parsed := parse_contract_key(symbol)) is not None:
            contracts.append(ContractRecord(symbol, parsed[2], parsed[3], parsed[1], quantity))
    return replace(position, contracts=tuple(contracts))


def net_fills(groups: Iterable[OrderGroupRecord]) -> Dict[str, int]:
    """Net filled quantity per contract over the groups; contracts that net to zero are left out."""
    return {leg.symbol: leg.quantity for leg in net_filled_legs(groups)}


def exit_legs(position: PositionRecord, exit_fills: Optional[Mapping[str, int]] = None) -> Tuple[LegSpec, ...]:
    """Legs that close every contract of the position (buys first: shorts are bought back before the longs that
    protect them are sold, should the broker split the combo). `exit_fills`: what earlier exits of this position
    already closed (net signed fills per contract, see `net_fills`), e.g. an exit that recovery gave up on
    half way: only the rest is ordered, never more than is held."""
    done = exit_fills or {}
    legs = []
    for contract in position.contracts:
        quantity = -(contract.quantity + done.get(contract.symbol, 0))
        if quantity == 0 or (quantity > 0) != (contract.quantity < 0):
            continue
        parsed = parse_contract_key(contract.symbol)
        underlying = parsed[0] if parsed else contract.symbol.split("-", 1)[0]
        legs.append(LegSpec(contract.symbol, underlying, contract.right, contract.strike, contract.expiry, quantity))
    return safe_order(legs)


def reduce_legs(position: PositionRecord, units: int) -> Tuple[LegSpec, ...]:
    """Legs that close `units` whole units of what the position holds (`position` as `settled_view` gives it),
    buys first; () when it holds no whole unit more than `units`."""
    held_units = position_units(position)
    if units <= 0 or held_units <= units:
        return ()
    legs = []
    for contract in position.contracts:
        parsed = parse_contract_key(contract.symbol)
        if parsed is None:  # shares: a settled position is exited whole, never reduced
            return ()
        quantity = -(contract.quantity // held_units) * units
        legs.append(LegSpec(contract.symbol, parsed[0], contract.right, contract.strike, contract.expiry, quantity))
    return safe_order(legs)


NEEDS_ATTENTION = "NEEDS ATTENTION"  # the prefix of a decision text that gave up; the position takes it over


def attention_of(groups: Iterable[OrderGroupRecord]) -> str:
    """The needs-attention text of a family: the newest decision that starts with NEEDS_ATTENTION, or ""."""
    marked = [g for g in groups if (g.decision or "").startswith(NEEDS_ATTENTION)]
    if not marked:
        return ""
    newest = max(marked, key=lambda g: (g.updated_at, g.group_id))
    return newest.decision or ""


def came_to_nothing(position_id: Optional[str], groups: Mapping[str, OrderGroupRecord]) -> bool:
    """True when an entry attempt never was at the broker: the position id has order groups, none is moving,
    and every leg was either never sent (no order id: written ahead, then a crash or a failed save) or refused
    (INVALID). An order that was live and then cancelled does not count: a fill racing its cancel is possible,
    so such an attempt stays the cycle's entry."""
    family = [g for g in groups.values() if position_id is not None and g.position_id == position_id]
    return bool(family) and all(
        not is_in_flight(g)
        and all(not leg.filled_quantity and (not leg.order_ids or leg.status is LegStatus.INVALID) for leg in g.legs)
        for g in family
    )


def open_positions_of(strategy_id: str, positions: Mapping[str, PositionRecord]) -> Tuple[PositionRecord, ...]:
    return tuple(
        p
        for _, p in sorted(positions.items())
        if p.strategy_id == strategy_id and p.status is not PositionStatus.CLOSED
    )


def in_flight_groups_of(strategy_id: str, groups: Mapping[str, OrderGroupRecord]) -> Tuple[OrderGroupRecord, ...]:
    return tuple(
        g
        for g in sorted(groups.values(), key=lambda g: (g.created_at, g.group_id))
        if g.strategy_id == strategy_id and is_in_flight(g)
    )


@dataclass(frozen=True)
class TargetState:
    state: StrategyState
    position_id: Optional[str]
    group_id: Optional[str]
    why: str


def target_state(
    strategy_id: str, groups: Mapping[str, OrderGroupRecord], positions: Mapping[str, PositionRecord]
) -> TargetState:
    """The state the records say the strategy is in: an exit in flight -> EXITING; an entry (or its completion
    or rollback) in flight -> ENTERING; an open position -> ACTIVE; otherwise WAITING."""
    moving = in_flight_groups_of(strategy_id, groups)
    held = open_positions_of(strategy_id, positions)
    # a share sale and a partial close too
    exits = [g for g in moving if g.purpose in (GroupPurpose.EXIT, GroupPurpose.SETTLEMENT, GroupPurpose.REDUCE)]
    if exits:
        group = exits[-1]
        return TargetState(StrategyState.EXITING, group.position_id, group.group_id, f"exit {group.group_id} in flight")
    if moving:
        group = moving[-1]
        return TargetState(
            StrategyState.ENTERING,
            group.position_id,
            group.group_id,
            f"{group.purpose.value} {group.group_id} in flight",
        )
    closing = [p for p in held if p.status is PositionStatus.CLOSING]
    if closing:
        # its exit filled but the close is not booked yet (it waits for a fill price): still exiting
        position_id = closing[0].position_id
        return TargetState(StrategyState.EXITING, position_id, None, f"position {position_id} closing")
    if held:
        return TargetState(StrategyState.ACTIVE, held[0].position_id, None, f"position {held[0].position_id} open")
    return TargetState(StrategyState.WAITING, None, None, "flat, nothing in flight")


__all__ = [
    "NEEDS_ATTENTION",
    "PlanFacts",
    "TargetState",
    "add_note",
    "attention_of",
    "came_to_nothing",
    "credit_received",
    "exit_legs",
    "facts_of",
    "in_flight_groups_of",
    "is_settled",
    "multiplier_of",
    "net_fills",
    "new_record_id",
    "open_positions_of",
    "plan_facts_of",
    "position_from_build",
    "position_holdings",
    "realized_pnl",
    "reduce_legs",
    "safe_id_part",
    "settled_view",
    "target_state",
    "targets_from_fill",
    "unpriced_fills",
    "with_leg_price",
]
