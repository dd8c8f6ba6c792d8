"""What the engine must do at start, from the loaded records. Pure planning: no store, no broker, no clock.

Call it twice (the engine acts on the plan; this module never does):

1. In ``initialize`` (``TradingEngine.start``), ``orders_known=False``: LEAN has not loaded holdings or open
   orders yet and rejects orders. The plan lists the groups to re-bind to this run, lost/stale records, and
   *provisional* decisions (unfilled legs of earlier runs are judged as if their orders died). Persist the
   decisions (``with_decision``) so the log and the store say what recovery intends; place nothing.
2. In ``on_warmup_finished``, after ``adopt_run`` for every group in ``rebind`` and after
   ``reconcile``/``apply_report``, ``orders_known=True``: the decisions are final; act on them.

Invariants:
- every INCOMPLETE group without a live recovery child gets exactly one decision; a group whose recovery
  child is in flight is left to the child, one whose child FILLED (or was itself RESOLVED) is listed in
  ``resolve_parents``;
- a position is listed to build only when no group of it is still moving and its net fills are not flat;
- a strategy is "stuck" only in ENTERING/EXITING, when the group it points to (followed to its latest
  recovery descendant) is missing or finished; in-flight groups are never stuck.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from core.order_groups import IN_FLIGHT_GROUP_STATUSES, cancel_open_legs, combo_units, is_in_flight, net_filled_legs
from core.ports import LegSpec
from core.records import (
    GroupPurpose,
    GroupStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    StrategyState,
    StrategyStateRecord,
)
from recovery.decisions import GroupDecision, decide_incomplete, refused_buys


@dataclass(frozen=True)
class StuckStrategy:
    strategy_id: str
    state: StrategyState
    group_id: Optional[str]  # the group followed to its latest recovery descendant, if any
    suggested: StrategyState
    reason: str


@dataclass(frozen=True)
class PositionToBuild:
    """An entry that finished (directly or through a completion) but has no position record yet."""

    position_id: str
    strategy_id: str
    entry_group_id: str  # the root ENTRY group
    legs: Tuple[LegSpec, ...]  # net filled quantity per contract over the position's groups
    entry_price: float  # net per unit of the root group; negative = credit


@dataclass(frozen=True)
class StartPlan:
    rebind: Tuple[str, ...]  # groups still moving whose order ids belong to an earlier run: adopt_run them
    lost: Tuple[str, ...]  # record names the store could not load: reconcile covers what holdings show
    stale: Tuple[str, ...]  # record names loaded at an older version than last saved
    decisions: Tuple[GroupDecision, ...]  # for INCOMPLETE groups (provisional unless orders_known)
    resolve_parents: Tuple[str, ...]  # incomplete groups whose recovery group FILLED: mark_resolved them
    positions_to_build: Tuple[PositionToBuild, ...]
    positions_to_close: Tuple[str, ...]  # open positions whose EXIT group FILLED
    stuck: Tuple[StuckStrategy, ...]
    final: bool  # orders_known: decisions may be acted on

    @property
    def needs_attention(self) -> bool:
        return bool(
            self.rebind
            or self.lost
            or self.stale
            or self.decisions
            or self.resolve_parents
            or self.positions_to_build
            or self.positions_to_close
            or self.stuck
        )


def _children(groups: Mapping[str, OrderGroupRecord]) -> Dict[str, List[OrderGroupRecord]]:
    out: Dict[str, List[OrderGroupRecord]] = {}
    for group in sorted(groups.values(), key=lambda g: (g.created_at, g.group_id)):
        if group.parent_group_id:
            out.setdefault(group.parent_group_id, []).append(group)
    return out


def latest_descendant(group_id: str, groups: Mapping[str, OrderGroupRecord]) -> Optional[OrderGroupRecord]:
    """The group itself, or its newest recovery child, followed down (a strategy may still point at the parent
    when it crashed between saving the recovery group and saving its own state)."""
    children = _children(groups)
    current = groups.get(group_id)
    seen: set[str] = set()
    while current is not None and current.group_id not in seen:
        seen.add(current.group_id)
        kids = children.get(current.group_id)
        if not kids:
            return current
        current = kids[-1]
    return current


def _open_position(positions: Mapping[str, PositionRecord], position_id: str) -> bool:
    position = positions.get(position_id)
    return position is not None and position.status is not PositionStatus.CLOSED


# groups that close (part of) a position: never part of what builds one
_CLOSING_PURPOSES = frozenset({GroupPurpose.EXIT, GroupPurpose.SETTLEMENT, GroupPurpose.REDUCE})


def _positions_to_build(
    groups: Mapping[str, OrderGroupRecord], positions: Mapping[str, PositionRecord]
) -> List[PositionToBuild]:
    by_position: Dict[str, List[OrderGroupRecord]] = {}
    for group in groups.values():
        by_position.setdefault(group.position_id, []).append(group)
    out = []
    for position_id in sorted(by_position):
        mine = by_position[position_id]
        roots = sorted((g for g in mine if g.purpose is GroupPurpose.ENTRY), key=lambda g: (g.created_at, g.group_id))
        if position_id in positions or not roots or any(g.status in IN_FLIGHT_GROUP_STATUSES for g in mine):
            continue
        opening = [group for group in mine if group.purpose not in _CLOSING_PURPOSES]
        legs = net_filled_legs(opening)
        cost = sum(leg.filled_quantity * leg.avg_fill_price for group in opening for leg in group.legs)
        if legs:
            root = roots[0]
            out.append(PositionToBuild(position_id, root.strategy_id, root.group_id, legs, cost / combo_units(root)))
    return out


def _stuck(
    strategies: Mapping[str, StrategyStateRecord], groups: Mapping[str, OrderGroupRecord]
) -> List[StuckStrategy]:
    out = []
    for strategy_id in sorted(strategies):
        record = strategies[strategy_id]
        if record.state not in (StrategyState.ENTERING, StrategyState.EXITING):
            continue
        group = latest_descendant(record.group_id, groups) if record.group_id else None
        entering = record.state is StrategyState.ENTERING
        if group is None:
            reason = f"{record.state.value} but its group {record.group_id or '(none)'} is missing; reconcile decides"
            out.append(StuckStrategy(strategy_id, record.state, record.group_id, StrategyState.RECOVERING, reason))
            continue
        if group.status in IN_FLIGHT_GROUP_STATUSES:
            continue
        flat = group.status in (GroupStatus.CANCELED, GroupStatus.FAILED)
        if group.purpose is GroupPurpose.ROLLBACK and group.status is GroupStatus.FILLED:
            suggested, why = StrategyState.WAITING, "the entry was rolled back"
        elif entering:
            suggested, why = (
                (StrategyState.WAITING, "nothing was entered") if flat else (StrategyState.ACTIVE, "entered")
            )
        else:
            suggested, why = (
                (StrategyState.ACTIVE, "the exit did not happen") if flat else (StrategyState.CLOSED, "exited")
            )
        reason = f"{record.state.value} but group {group.group_id} is {group.status.value}: {why}"
        out.append(StuckStrategy(strategy_id, record.state, group.group_id, suggested, reason))
    return out


def plan_start(
    strategies: Mapping[str, StrategyStateRecord],
    groups: Mapping[str, OrderGroupRecord],
    positions: Mapping[str, PositionRecord],
    run_id: str,
    now: datetime,
    *,
    market_open: bool,
    entries_allowed: bool,
    orders_known: bool,
    lost: Sequence[str] = (),
    stale: Sequence[str] = (),
) -> StartPlan:
    """The start-up plan (see the module docstring for when to call it and with which ``orders_known``)."""
    children = _children(groups)
    moving = IN_FLIGHT_GROUP_STATUSES
    rebind = tuple(gid for gid in sorted(groups) if groups[gid].run_id != run_id and groups[gid].status in moving)
    decisions: List[GroupDecision] = []
    resolve: List[str] = []
    refused = refused_buys(groups)
    for group_id in sorted(groups):
        group = groups[group_id]
        if group.status is not GroupStatus.INCOMPLETE:
            continue
        kids = children.get(group_id, [])
        # A RESOLVED child finished too (through its own recovery child). Completions finish the structure and
        # rollbacks flatten the whole family (recovery.decisions.family_rollback_legs), so either way the
        # parent's own pending legs must never be decided again: that would order them twice.
        if any(k.status in (GroupStatus.FILLED, GroupStatus.RESOLVED) for k in kids):
            resolve.append(group_id)
            continue
        if any(is_in_flight(k) for k in kids):
            continue  # its recovery group is under way (and is decided itself if it is incomplete)
        judged = group if orders_known or group.run_id == run_id else cancel_open_legs(group, now)
        if judged.status is GroupStatus.INCOMPLETE:
            family_refused = refused.get(group.position_id, set())
            decisions.append(decide_incomplete(judged, market_open, entries_allowed, now, family_refused))
    to_close = tuple(
        sorted(
            {
                g.position_id
                for g in groups.values()
                if g.purpose is GroupPurpose.EXIT
                and g.status is GroupStatus.FILLED
                and _open_position(positions, g.position_id)
            }
        )
    )
    return StartPlan(
        rebind=rebind,
        lost=tuple(lost),
        stale=tuple(stale),
        decisions=tuple(decisions),
        resolve_parents=tuple(resolve),
        positions_to_build=tuple(_positions_to_build(groups, positions)),
        positions_to_close=to_close,
        stuck=tuple(_stuck(strategies, groups)),
        final=orders_known,
    )


__all__ = ["PositionToBuild", "StartPlan", "StuckStrategy", "latest_descendant", "plan_start"]
