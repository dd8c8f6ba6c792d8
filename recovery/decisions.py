"""What to do with an incomplete order group: complete it, roll it back, or wait. Pure.

Rules, first match wins (``decide_incomplete``):

1. Only an INCOMPLETE group is decided (something filled, not everything); anything else is a caller bug.
2. WAIT while a leg is still open at the broker: a second order for the same leg could double-fill. The engine
   cancels the leftovers (or lets them finish) and decides again.
3. WAIT while the market is closed: a market order then becomes MarketOnOpen at an unknown price.
4. A risk-reducing group (EXIT, REDUCE, or a ROLLBACK) is always COMPLETED: closing reduces risk, whatever the
   breakers say.
5. A risk-adding group (ENTRY, or a COMPLETION of an entry) is ROLLED BACK when
   a. risk does not allow entries (breaker, buying power): the filled legs are closed;
   b. a pending leg expires today or has expired: it cannot be completed;
   c. a pending *long* leg was refused by the broker (INVALID) on this group or on ANY opening group of its
      family (the entry and its completions: ``refused_buys``): completion re-submits exactly the missing
      quantities, so the completed structure is the designed one; the only way completing leaves a short more
      naked than designed is a protective long that cannot be bought, and a refused long is that case. The
      refusal usually happens on the completion child (the entry's own leg was merely cancelled), so looking
      at the parent's legs alone would send the same refused buy again and again while the shorts stay naked.
   Otherwise it is COMPLETED.

Leg order of the recovery group (``recovery_legs``): buys first, then sells. In one combo order the order is
moot (LEAN checks every leg before submitting any). Submitted singly it matters: in a rollback we buy back the
shorts before selling the longs that protect them, and in a completion we buy the protection before selling
against it, so no short is ever more naked than designed, even for a moment.

Purposes of the recovery group: rolling back -> ROLLBACK; completing an ENTRY or COMPLETION -> COMPLETION;
completing an EXIT or ROLLBACK -> the same purpose (it is still an exit), with ``parent_group_id`` set.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import AbstractSet, Dict, Mapping, Sequence, Set, Tuple

from core.order_groups import filled_legs, is_incomplete, net_filled_legs, new_group, open_legs, pending_legs
from core.ports import LegSpec
from core.records import OPENING_PURPOSES, GroupPurpose, LegStatus, OrderGroupRecord

RISK_REDUCING = frozenset({GroupPurpose.EXIT, GroupPurpose.ROLLBACK, GroupPurpose.SETTLEMENT, GroupPurpose.REDUCE})


class DecisionAction(StrEnum):
    COMPLETE = "COMPLETE"  # submit the pending (unfilled) quantities
    ROLL_BACK = "ROLL_BACK"  # close the filled quantities
    WAIT = "WAIT"  # do nothing now; decide again later


@dataclass(frozen=True)
class GroupDecision:
    group_id: str
    action: DecisionAction
    reason: str  # human-readable; logged loudly and persisted in group.decision
    legs: Tuple[LegSpec, ...]  # the recovery group's legs in safe order (buys first); () for WAIT
    decided_at: datetime

    @property
    def text(self) -> str:
        """What to persist in ``OrderGroupRecord.decision`` before acting."""
        return f"{self.action.value} at {self.decided_at:%Y-%m-%d %H:%M}: {self.reason}"


def safe_order(legs: Sequence[LegSpec]) -> Tuple[LegSpec, ...]:
    """Buys before sells, otherwise in the given order (see the module docstring)."""
    return tuple(leg for leg in legs if leg.quantity > 0) + tuple(leg for leg in legs if leg.quantity < 0)


def recovery_legs(group: OrderGroupRecord, action: DecisionAction) -> Tuple[LegSpec, ...]:
    """COMPLETE -> the pending quantities; ROLL_BACK -> the negated filled quantities; WAIT -> ()."""
    if action is DecisionAction.COMPLETE:
        return safe_order(pending_legs(group))
    if action is DecisionAction.ROLL_BACK:
        return safe_order([replace(leg, quantity=-leg.quantity) for leg in filled_legs(group)])
    return ()


def refused_buys(groups: Mapping[str, OrderGroupRecord]) -> Dict[str, Set[str]]:
    """Per position id: the contracts whose BUY the broker refused (leg INVALID) on an opening group (ENTRY or
    COMPLETION) of that position's family. Rule 5c rolls the family back when a pending long is among them."""
    out: Dict[str, Set[str]] = {}
    for group in groups.values():
        if group.purpose not in OPENING_PURPOSES:
            continue
        for leg in group.legs:
            if leg.status is LegStatus.INVALID and leg.quantity > 0:
                out.setdefault(group.position_id, set()).add(leg.symbol)
    return out


def decide_incomplete(
    group: OrderGroupRecord,
    market_open: bool,
    entries_allowed: bool,
    now: datetime,
    refused: AbstractSet[str] = frozenset(),
) -> GroupDecision:
    """Decide what to do with an INCOMPLETE group (rules in the module docstring). Raises ValueError otherwise.
    ``refused``: contracts whose buy the broker refused on any opening group of the family (``refused_buys``)."""
    if not is_incomplete(group):
        raise ValueError(f"group {group.group_id} is {group.status.value}, not INCOMPLETE: nothing to decide")

    def decision(action: DecisionAction, reason: str) -> GroupDecision:
        return GroupDecision(group.group_id, action, reason, recovery_legs(group, action), now)

    still_open = open_legs(group)
    if still_open:
        symbols = ", ".join(leg.symbol for leg in still_open)
        return decision(DecisionAction.WAIT, f"legs still open at the broker ({symbols}); cancel or let them finish")
    if not market_open:
        return decision(DecisionAction.WAIT, "market closed; a market order now would fill at the open, unseen")
    if group.purpose in RISK_REDUCING:
        return decision(DecisionAction.COMPLETE, f"{group.purpose.value} group: finishing it reduces risk")
    if not entries_allowed:
        return decision(DecisionAction.ROLL_BACK, "risk does not allow entries now; closing the filled legs")
    pending = pending_legs(group)
    expired = [leg.symbol for leg in pending if leg.expiry <= now.date()]
    if expired:
        return decision(DecisionAction.ROLL_BACK, f"pending legs expire today or have expired: {', '.join(expired)}")
    refused_here = {leg.symbol for leg in group.legs if leg.status is LegStatus.INVALID and leg.quantity > 0}
    refused_longs = [p.symbol for p in pending if p.quantity > 0 and p.symbol in (refused_here | set(refused))]
    if refused_longs:
        return decision(
            DecisionAction.ROLL_BACK,
            f"the broker refused the protective leg(s) {', '.join(refused_longs)}; completing could leave shorts naked",
        )
    return decision(DecisionAction.COMPLETE, "market open and risk allows entries; submitting the missing legs")


def family_rollback_legs(group: OrderGroupRecord, groups: Mapping[str, OrderGroupRecord]) -> Tuple[LegSpec, ...]:
    """Rollback legs for an opening group (ENTRY or COMPLETION): close the NET fills of every opening group of
    its position (entry, completions, earlier rollbacks), buys first.

    Rolling back a completion alone would leave the entry's own fills held while the completion is marked done,
    and the parent counts as resolved: a partial structure with nobody deciding it. Closing the family's net
    fills leaves the position flat whatever mix of completions and rollbacks came before."""
    family = [
        member
        for member in sorted(groups.values(), key=lambda g: (g.created_at, g.group_id))
        if member.position_id == group.position_id and member.purpose not in (GroupPurpose.EXIT, GroupPurpose.REDUCE)
    ]
    return safe_order([replace(leg, quantity=-leg.quantity) for leg in net_filled_legs(family)])


def recovery_purpose(group: OrderGroupRecord, action: DecisionAction) -> GroupPurpose:
    if action is DecisionAction.ROLL_BACK:
        return GroupPurpose.ROLLBACK
    if action is DecisionAction.COMPLETE:
        return group.purpose if group.purpose in RISK_REDUCING else GroupPurpose.COMPLETION
    raise ValueError("WAIT has no recovery group")


def recovery_group(
    group: OrderGroupRecord, decision: GroupDecision, group_id: str, now: datetime, run_id: str
) -> OrderGroupRecord:
    """The write-ahead recovery group for a COMPLETE or ROLL_BACK decision (ValueError for WAIT).

    Save it (and the parent with ``with_decision(parent, decision.text, now)``) before submitting it. When it is
    FILLED, mark the parent ``mark_resolved``.
    """
    if decision.group_id != group.group_id:
        raise ValueError(f"decision is about {decision.group_id}, not {group.group_id}")
    purpose = recovery_purpose(group, decision.action)
    return new_group(
        group_id,
        group.strategy_id,
        purpose,
        group.position_id,
        decision.legs,
        now,
        run_id,
        parent_group_id=group.group_id,
    )


__all__ = [
    "RISK_REDUCING",
    "DecisionAction",
    "GroupDecision",
    "decide_incomplete",
    "family_rollback_legs",
    "recovery_group",
    "recovery_legs",
    "recovery_purpose",
    "refused_buys",
    "safe_order",
]
