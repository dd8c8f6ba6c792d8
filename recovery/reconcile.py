"""Reconcile saved positions and order groups with the broker's holdings (the truth). Pure.

Who *claims* a held contract (``claims``):
- an open position (OPEN or CLOSING) claims its contracts;
- an ENTRY or COMPLETION group claims its filled quantities until a position record with its ``position_id``
  exists (the engine creates the position from the filled group; from then on the position owns them);
- an EXIT group claims its (closing) filled quantities while its position is still open (the engine closes the
  position when the exit is FILLED); so does a SETTLEMENT group (what an exercise, assignment or expiry closed
  or delivered);
- a ROLLBACK group claims its filled quantities while its parent still claims (the two net out);
- whatever the group status: CANCELED/FAILED groups have no fills, and a RESOLVED group's fills stand until
  its position is booked. Position existence is the single switch, so a crash between saving a group and
  saving its position never makes contracts look untracked or double-claimed.

Invariants (tests/test_recovery_reconcile_properties.py checks them over random records and holdings):

1. After ``apply_report``, for every contract: held quantity == sum of the claims on it. So every held contract
   is accounted for by open positions or in-flight groups, and nothing is claimed that is not held.
2. After ``apply_report`` no open position has a contract with quantity 0 or no contract at all.
3. ``reconcile`` is deterministic (same inputs, same report, actions in a fixed order) and idempotent:
   reconciling the applied result again yields an empty report.
4. Fills are never invented beyond a leg's quantity, and a leg's recorded fill never exceeds what is held
   (``MissedFill`` only adds up to a leg's remaining quantity; ``GroupFillMismatch`` only lowers a fill).
5. Records are only changed, never deleted: an orphan position is CLOSED and kept for the audit.

How a difference ``held - claimed`` on one contract is explained, in this order:
1. MissedFill: an in-flight group's leg that still had quantity to fill, in the direction of the difference,
   filled while we were down (no order event is ever sent for it); the newest group is credited first. Its
   price (no event means no fill price): an OPENING fill (what is held grew in the fill's direction) is priced
   from the broker's average price of the holding, less what the fills we already booked on that contract
   cost; a CLOSING fill (the holding shrank or is gone) at the current quote mid; None when neither is known
   (the leg's average price is then left as it was, and the audit note says so);
2. QuantityMismatch: open positions that claim more than is held are lowered to what is held (newest
   position id first); a position left with nothing is an OrphanCleaned instead (closed, kept for the audit);
3. GroupFillMismatch: a group's recorded fills that holdings do not show are lowered;
4. UntrackedAdopted: whatever is still held and unexplained (shares of the underlying too) becomes a recovery
   position ``adopted-<contract>``
   (strategy ``ADOPTED_STRATEGY_ID``), so it is managed; UnknownHolding when the key is not a contract key
   (left alone, reported as an alert every time).
A position record that is lost while its entry group survives needs no adoption: the group keeps claiming the
contracts, and ``recovery.startup`` tells the engine to rebuild the position from it.
Closing a position can release an exit group's claims, so ``reconcile`` repeats these steps on the applied
state until nothing is left (a few rounds at most); the report holds the actions of every round, in order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from core.contracts import SHARE_EXPIRY, SHARE_RIGHT, SHARE_STRIKE, is_share_key, parse_contract_key
from core.order_groups import apply_holdings_fill, remaining_quantity, set_leg_fill
from core.records import (
    OPENING_PURPOSES,
    ContractRecord,
    GroupPurpose,
    LegRecord,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    Right,
)

ADOPTED_STRATEGY_ID = "recovery"
ADOPTED_NOTE = "adopted by recovery"
FILL_PRICE_UNKNOWN = "fill price unknown"  # position note: a fill learned from holdings could not be priced


@dataclass(frozen=True)
class MissedFill:
    group_id: str
    symbol: str
    quantity: int  # signed quantity that filled while we were down
    price: Optional[float] = None  # per contract, learned from holdings or quotes (see the module docstring)


@dataclass(frozen=True)
class QuantityMismatch:
    position_id: str
    symbol: str
    saved: int
    held: int  # what this position is set to (0 = the contract is dropped from the position)
    resolution: str = "record adjusted to holdings and flagged in the position note"


@dataclass(frozen=True)
class OrphanCleaned:
    position_id: str
    reason: str = "no contract of this position is held: closed, kept for the audit"


@dataclass(frozen=True)
class GroupFillMismatch:
    group_id: str
    symbol: str
    recorded: int
    held: int  # the fill the leg is set to


@dataclass(frozen=True)
class UntrackedAdopted:
    symbol: str
    quantity: int
    position_id: str  # the position created (or extended) to manage it; its strategy_id is ADOPTED_STRATEGY_ID
    underlying: str
    right: Right
    strike: float
    expiry: date


@dataclass(frozen=True)
class UnknownHolding:
    symbol: str
    quantity: int  # not a contract key we can manage: left alone, reported every time


ReconcileAction = Union[
    MissedFill, QuantityMismatch, OrphanCleaned, GroupFillMismatch, UntrackedAdopted, UnknownHolding
]


@dataclass(frozen=True)
class ReconcileReport:
    actions: Tuple[ReconcileAction, ...]

    @property
    def clean(self) -> bool:
        """True when saved state and holdings agree (UnknownHolding alerts aside)."""
        return all(isinstance(action, UnknownHolding) for action in self.actions)


@dataclass(frozen=True)
class AuditNote:
    kind: str  # "missed-fill", "quantity-mismatch", "orphan-cleaned", "group-fill-mismatch", "adopted", "unknown"
    message: str
    ref: str  # record name the note is about


@dataclass(frozen=True)
class Reconciled:
    positions: Dict[str, PositionRecord]  # every position, updated
    groups: Dict[str, OrderGroupRecord]  # every group, updated
    changed_positions: Tuple[str, ...]  # ids to save
    changed_groups: Tuple[str, ...]
    audit: Tuple[AuditNote, ...]


# ----------------------------------------------------------------------------------------------- claims


def _is_open(position: PositionRecord) -> bool:
    return position.status is not PositionStatus.CLOSED


def group_claims(
    group: OrderGroupRecord, positions: Mapping[str, PositionRecord], groups: Mapping[str, OrderGroupRecord]
) -> bool:
    """Whether the group's filled quantities are its own claim on holdings (see the module docstring)."""
    # Status does not matter: CANCELED and FAILED groups have no fills, and a RESOLVED group's fills still
    # stand until its position is booked (its recovery group claims the rest, or nets them out).
    seen: set[str] = set()
    current: Optional[OrderGroupRecord] = group
    while current is not None and current.group_id not in seen:
        seen.add(current.group_id)
        if current.purpose in OPENING_PURPOSES:
            return current.position_id not in positions
        if current.purpose in (GroupPurpose.EXIT, GroupPurpose.SETTLEMENT, GroupPurpose.REDUCE):
            position = positions.get(current.position_id)
            if position is None and current.purpose is GroupPurpose.SETTLEMENT:
                # booked before its position exists (an entry filled and assigned while the algorithm was down):
                # it claims with the entry's groups until the position is built from them
                return True
            return position is not None and _is_open(position)
        # ROLLBACK: claims while its parent does
        current = groups.get(current.parent_group_id) if current.parent_group_id else None
    return False


def claims(positions: Mapping[str, PositionRecord], groups: Mapping[str, OrderGroupRecord]) -> Dict[str, int]:
    """Sum of the claims per contract (the quantity the records say is held)."""
    total: Dict[str, int] = {}
    for position in positions.values():
        if _is_open(position):
            for contract in position.contracts:
                total[contract.symbol] = total.get(contract.symbol, 0) + contract.quantity
    for group in groups.values():
        if group_claims(group, positions, groups):
            for leg in group.legs:
                total[leg.symbol] = total.get(leg.symbol, 0) + leg.filled_quantity
    return total


# ----------------------------------------------------------------------------------------------- reconcile


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _take(diff: int, room: int) -> int:
    """The part of ``diff`` that ``room`` (same direction) can absorb."""
    if diff == 0 or room == 0 or _sign(diff) != _sign(room):
        return 0
    return _sign(diff) * min(abs(diff), abs(room))


def _adoption_target(symbol: str, positions: Mapping[str, PositionRecord], assigned: Dict[str, str]) -> str:
    """The recovery position for an untracked holding: ``adopted-<contract>`` (open ones are extended; a closed
    one keeps its audit and a numbered id is used instead)."""
    if symbol not in assigned:
        base = "adopted-" + re.sub(r"[^A-Za-z0-9_-]", "_", symbol)
        candidate, n = base, 1
        while candidate in positions and not _is_open(positions[candidate]):
            n += 1
            candidate = f"{base}-{n}"
        assigned[symbol] = candidate
    return assigned[symbol]


def _known_price(value: Optional[float]) -> Optional[float]:
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _missed_fill_price(
    held: int,
    missed: int,
    booked: Sequence[LegRecord],
    *,
    position_claims: bool,
    average_price: Optional[float],
    quote_mid: Optional[float],
) -> Optional[float]:
    """The per-contract price of ``missed`` (signed, one contract's total missed fill); None when unknown.

    Opening (the holding is on the fill's side): the broker's average price covers everything held, so the
    missed part costs average x held minus what the booked fills on the contract cost, when those are all ours,
    on the same side and priced (else the average itself is the best figure). Closing: the quote mid now."""
    if held and (held > 0) == (missed > 0):
        average = _known_price(average_price)
        if average is None:
            return None
        booked_quantity = sum(leg.filled_quantity for leg in booked)
        if (
            not position_claims
            and booked_quantity + missed == held
            and all((leg.filled_quantity > 0) == (held > 0) and leg.avg_fill_price > 0 for leg in booked)
        ):
            booked_cost = sum(leg.filled_quantity * leg.avg_fill_price for leg in booked)
            derived = _known_price((average * held - booked_cost) / missed)
            if derived is not None:
                return derived
        return average
    return _known_price(quote_mid)


def _leftover(
    symbol: str, diff: int, positions: Mapping[str, PositionRecord], assigned: Dict[str, str]
) -> ReconcileAction:
    """What to do with `diff` of `symbol` held and claimed by nobody: adopt it into a recovery position, or
    report it when the key is neither a contract nor the underlying's shares."""
    parsed = parse_contract_key(symbol)
    if parsed is None and is_share_key(symbol):
        # shares of the underlying nobody claims (delivered by an exercise we could not book): managed too
        parsed = (symbol, SHARE_EXPIRY, SHARE_RIGHT, SHARE_STRIKE)
    if parsed is None:
        return UnknownHolding(symbol, diff)
    underlying, expiry, right, strike = parsed
    position_id = _adoption_target(symbol, positions, assigned)
    return UntrackedAdopted(symbol, diff, position_id, underlying, right, strike, expiry)


def _shrink_positions(
    symbol: str, diff: int, open_positions: Sequence[PositionRecord], new_qty: Dict[Tuple[str, str], int]
) -> int:
    """Take a shortfall of `symbol` off the positions that claim it, newest id first (updates `new_qty`);
    returns what is left of `diff`."""
    for position in reversed(open_positions):
        key = (position.position_id, symbol)
        if key in new_qty and (taken := _take(diff, -new_qty[key])):
            new_qty[key] += taken
            diff -= taken
    return diff


def _one_round(
    positions: Mapping[str, PositionRecord],
    groups: Mapping[str, OrderGroupRecord],
    holdings: Mapping[str, int],
    average_prices: Mapping[str, float],
    quote_mids: Mapping[str, float],
) -> List[ReconcileAction]:
    open_positions = sorted((p for p in positions.values() if _is_open(p)), key=lambda p: p.position_id)
    claiming = sorted((g for g in groups.values() if group_claims(g, positions, groups)), key=lambda g: g.group_id)
    claimed = claims(positions, groups)
    symbols = sorted({s for s, q in holdings.items() if q} | set(claimed))
    new_qty: Dict[Tuple[str, str], int] = {
        (p.position_id, c.symbol): c.quantity for p in open_positions for c in p.contracts
    }
    fills: List[ReconcileAction] = []
    group_fixes: List[ReconcileAction] = []
    adoptions: List[ReconcileAction] = []
    assigned: Dict[str, str] = {}
    newest_first = sorted(claiming, key=lambda g: (g.created_at, g.group_id), reverse=True)
    for symbol in symbols:
        diff = holdings.get(symbol, 0) - claimed.get(symbol, 0)
        # 1. fills we missed while down: only groups whose fills are claimed can explain a move in holdings.
        #    Newest group first: a newer group of a family (a retried exit, a recovery child) is only created once
        #    the older ones stopped moving, so the newest is the one that was in flight when we went down (an
        #    older, cancelled exit must not be credited with the fill of its retry).
        missed: List[Tuple[str, int]] = []
        for group in newest_first:
            for leg in group.legs:
                if leg.symbol == symbol and (taken := _take(diff, remaining_quantity(leg))):
                    missed.append((group.group_id, taken))
                    diff -= taken
        if missed:
            booked = [leg for g in claiming for leg in g.legs if leg.symbol == symbol and leg.filled_quantity]
            price = _missed_fill_price(
                holdings.get(symbol, 0),
                sum(taken for _, taken in missed),
                booked,
                position_claims=any(c.symbol == symbol for p in open_positions for c in p.contracts),
                average_price=average_prices.get(symbol),
                quote_mid=quote_mids.get(symbol),
            )
            fills.extend(MissedFill(group_id, symbol, taken, price) for group_id, taken in missed)
        # 2. positions claiming more than is held, newest id first
        diff = _shrink_positions(symbol, diff, open_positions, new_qty)
        # 3. group fills that holdings do not show
        for group in reversed(claiming):
            for leg in group.legs:
                if leg.symbol == symbol and (taken := _take(diff, -leg.filled_quantity)):
                    group_fixes.append(
                        GroupFillMismatch(group.group_id, symbol, leg.filled_quantity, leg.filled_quantity + taken)
                    )
                    diff -= taken
        # 4. what is left is held and nobody's
        if diff:
            adoptions.append(_leftover(symbol, diff, positions, assigned))
    position_fixes: List[ReconcileAction] = []
    for position in open_positions:
        quantities = [new_qty[(position.position_id, c.symbol)] for c in position.contracts]
        if all(q == 0 for q in quantities):
            position_fixes.append(OrphanCleaned(position.position_id))
            continue
        for contract, quantity in zip(position.contracts, quantities, strict=True):
            if quantity != contract.quantity or quantity == 0:
                position_fixes.append(
                    QuantityMismatch(position.position_id, contract.symbol, contract.quantity, quantity)
                )
    return [*fills, *position_fixes, *group_fixes, *adoptions]


def reconcile(
    positions: Mapping[str, PositionRecord],
    groups: Mapping[str, OrderGroupRecord],
    holdings: Mapping[str, int],
    average_prices: Optional[Mapping[str, float]] = None,
    quote_mids: Optional[Mapping[str, float]] = None,
) -> ReconcileReport:
    """Compare the records with holdings (call after LEAN loaded holdings: on_warmup_finished, never in
    initialize). Deterministic; the actions are applied with ``apply_report``. ``average_prices`` (the broker's
    average price per held contract) and ``quote_mids`` (current mids) price the fills missed while down."""
    averages: Mapping[str, float] = average_prices or {}
    mids: Mapping[str, float] = quote_mids or {}
    actions: List[ReconcileAction] = []
    current_positions, current_groups = dict(positions), dict(groups)
    for _ in range(len(positions) + 3):
        found = [
            a
            for a in _one_round(current_positions, current_groups, holdings, averages, mids)
            if not isinstance(a, UnknownHolding)
        ]
        if not found:
            break
        actions.extend(found)
        result = apply_report(current_positions, current_groups, ReconcileReport(tuple(found)), datetime.min)
        current_positions, current_groups = result.positions, result.groups
    unknown = [
        a
        for a in _one_round(current_positions, current_groups, holdings, averages, mids)
        if isinstance(a, UnknownHolding)
    ]
    return ReconcileReport((*actions, *unknown))


# ----------------------------------------------------------------------------------------------- apply


def _adopted_position(action: UntrackedAdopted, now: datetime) -> PositionRecord:
    contract = ContractRecord(action.symbol, action.right, action.strike, action.expiry, action.quantity)
    return PositionRecord(
        position_id=action.position_id,
        strategy_id=ADOPTED_STRATEGY_ID,
        entry_group_id="",
        entry_time=now,
        entry_price=0.0,  # unknown: the broker's average price is not ours to persist as an entry
        contracts=(contract,),
        expiry=action.expiry,
        strikes=(action.strike,),
        entry_vix=None,
        profit_target=0.0,
        max_loss=0.0,
        params_hash="",
        note=ADOPTED_NOTE,
    )


def _with_contracts(position: PositionRecord, contracts: Tuple[ContractRecord, ...]) -> PositionRecord:
    return replace(
        position,
        contracts=contracts,
        expiry=min(c.expiry for c in contracts),
        strikes=tuple(sorted({c.strike for c in contracts})),
    )


def _append_note(note: str, text: str) -> str:
    return f"{note}; {text}" if note else text


def apply_report(
    positions: Mapping[str, PositionRecord],
    groups: Mapping[str, OrderGroupRecord],
    report: ReconcileReport,
    now: datetime,
) -> Reconciled:
    """Apply the actions in order and return the updated records plus audit notes. The engine saves the
    changed records (``changed_positions``/``changed_groups``) and writes each note with ``store.audit``."""
    new_positions, new_groups = dict(positions), dict(groups)
    changed_p: Dict[str, None] = {}
    changed_g: Dict[str, None] = {}
    notes: List[AuditNote] = []
    for action in report.actions:
        if isinstance(action, MissedFill):
            new_groups[action.group_id] = apply_holdings_fill(
                new_groups[action.group_id], action.symbol, action.quantity, now, fill_price=action.price
            )
            changed_g[action.group_id] = None
            priced = (
                f"at {action.price:.4f}" if action.price is not None else f"at an unknown price ({FILL_PRICE_UNKNOWN})"
            )
            notes.append(
                AuditNote(
                    "missed-fill",
                    f"{action.symbol} filled {action.quantity:+d} while down, {priced}",
                    f"group-{action.group_id}",
                )
            )
        elif isinstance(action, GroupFillMismatch):
            new_groups[action.group_id] = set_leg_fill(new_groups[action.group_id], action.symbol, action.held, now)
            changed_g[action.group_id] = None
            notes.append(
                AuditNote(
                    "group-fill-mismatch",
                    f"{action.symbol} recorded fill {action.recorded:+d}, holdings show {action.held:+d}: lowered",
                    f"group-{action.group_id}",
                )
            )
        elif isinstance(action, QuantityMismatch):
            position = new_positions[action.position_id]
            contracts = tuple(
                replace(c, quantity=action.held) if c.symbol == action.symbol else c for c in position.contracts
            )
            contracts = tuple(c for c in contracts if c.quantity != 0)
            text = f"quantity mismatch {action.symbol} {action.saved:+d}->{action.held:+d}"
            position = replace(position, note=_append_note(position.note, text))
            new_positions[action.position_id] = _with_contracts(position, contracts) if contracts else position
            changed_p[action.position_id] = None
            notes.append(
                AuditNote("quantity-mismatch", f"{text}: {action.resolution}", f"position-{action.position_id}")
            )
        elif isinstance(action, OrphanCleaned):
            position = new_positions[action.position_id]
            new_positions[action.position_id] = replace(
                position,
                status=PositionStatus.CLOSED,
                exit_time=now,
                note=_append_note(position.note, "orphan cleaned: no contract held"),
            )
            changed_p[action.position_id] = None
            notes.append(AuditNote("orphan-cleaned", action.reason, f"position-{action.position_id}"))
        elif isinstance(action, UntrackedAdopted):
            existing = new_positions.get(action.position_id)
            if existing is not None and _is_open(existing):
                merged: List[ContractRecord] = []
                added = False
                for c in existing.contracts:
                    if c.symbol == action.symbol:
                        c = replace(c, quantity=c.quantity + action.quantity)  # noqa: PLW2901
                        added = True
                    if c.quantity:
                        merged.append(c)
                if not added:
                    merged.append(
                        ContractRecord(action.symbol, action.right, action.strike, action.expiry, action.quantity)
                    )
                new_positions[action.position_id] = _with_contracts(existing, tuple(merged))
            else:
                new_positions[action.position_id] = _adopted_position(action, now)
            changed_p[action.position_id] = None
            notes.append(
                AuditNote(
                    "adopted",
                    f"untracked {action.symbol} {action.quantity:+d} now managed by position {action.position_id}",
                    f"position-{action.position_id}",
                )
            )
        else:
            notes.append(
                AuditNote("unknown-holding", f"{action.symbol} {action.quantity:+d} is not a contract key", "")
            )
    return Reconciled(new_positions, new_groups, tuple(changed_p), tuple(changed_g), tuple(notes))


__all__ = [
    "ADOPTED_NOTE",
    "ADOPTED_STRATEGY_ID",
    "FILL_PRICE_UNKNOWN",
    "AuditNote",
    "GroupFillMismatch",
    "MissedFill",
    "OrphanCleaned",
    "QuantityMismatch",
    "ReconcileAction",
    "ReconcileReport",
    "Reconciled",
    "UnknownHolding",
    "UntrackedAdopted",
    "apply_report",
    "claims",
    "group_claims",
    "reconcile",
]
