"""Placing orders, always write-ahead: the group (and the strategy state that explains it) is saved and flushed
BEFORE the broker hears of it, so a crash at any point leaves a record that recovery can match with holdings.

Order of every submission:
1. save the PENDING group (immediate put);
2. move the strategy (ENTERING/EXITING) or mark the parent's decision, also an immediate put;
3. flush (LEAN's LocalObjectStore writes pending saves to disk; elsewhere a no-op we cannot check);
4. only if 1 and 2 were accepted by the store: submit. Otherwise the group is marked refused (FAILED) and
   nothing is placed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List, Optional, Sequence

from core.contracts import is_share_key
from core.order_groups import (
    cancel_open_legs,
    is_in_flight,
    mark_refused,
    mark_resolved,
    mark_submitted,
    new_group,
    open_legs,
    pending_legs,
    with_decision,
)
from core.ports import LegSpec, SubmittedOrder
from core.records import (
    GroupPurpose,
    GroupStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    StrategyState,
)
from core.state_machine import StrategyMachine
from engine.base import EngineBase
from engine.facts import NEEDS_ATTENTION, exit_legs, facts_of, net_fills, new_record_id, settled_view
from engine.protocols import EXIT_COMBO_ATTEMPTS, MAX_EXIT_ATTEMPTS, MAX_RECOVERY_ATTEMPTS
from recovery.decisions import DecisionAction, GroupDecision, family_rollback_legs, recovery_group
from strategies.base import EntryPlan

_OPENING = frozenset({GroupPurpose.ENTRY, GroupPurpose.COMPLETION})


class EngineOrders(EngineBase):
    # ------------------------------------------------------------------------------------------- ids

    def _taken_ids(self) -> set[str]:
        return set(self._groups) | set(self._positions)

    def _in_flight_for_position(self, position_id: str) -> bool:
        return any(g.position_id == position_id and is_in_flight(g) for g in self._groups.values())

    # ------------------------------------------------------------------------------------------- entry / exit

    def _enter(self, machine: StrategyMachine, plan: EntryPlan, vix: Optional[float]) -> None:
        """Write the ENTRY group ahead, move WAITING -> ENTERING (durable), flush, then submit the combo."""
        strategy_id = machine.strategy_id
        run_id = self._run_id
        if self._quotes_missing(f"{strategy_id}-entry", plan.legs):
            return
        position_id = new_record_id(strategy_id, self._now, run_id, self._taken_ids())
        group_id = f"{position_id}-entry"
        try:
            group = new_group(group_id, strategy_id, GroupPurpose.ENTRY, position_id, plan.legs, self._now, run_id)
        except ValueError as error:
            self._alert("entry-refused", f"{strategy_id}: entry plan has bad legs: {error}", strategy_id)
            return
        # the plan's facts are saved with the group, before any order: the position is built from them later
        group = replace(
            group,
            profit_target=plan.profit_target,
            max_loss=plan.max_loss,
            entry_vix=vix,
            credit=plan.credit,
            credit_symbols=plan.credit_symbols,
            stop_cap=plan.stop_cap,
            facts=facts_of(plan.facts),
        )
        group_saved = self._set_group(group)
        state_saved = False
        if group_saved:
            state_saved = self._move(
                machine,
                StrategyState.ENTERING,
                f"entry: {plan.reason}",
                position_id=position_id,
                group_id=group_id,
                last_entry_day=self._now.date(),
            )
        flushed = self._flush_write_ahead()
        if not (group_saved and state_saved and flushed):
            self._alert("save-failed", f"{strategy_id}: entry {group_id} not durable; no order placed", group_id)
            self._set_group(mark_refused(self._groups[group_id], self._now), immediate=False)
            if machine.state is StrategyState.ENTERING:
                self._move(machine, StrategyState.WAITING, "entry not durable: nothing placed", position_id=None)
            return
        self._log.info(f"engine: {strategy_id} entering {group_id} ({plan.units} units): {plan.reason}")
        self._submit(group_id, as_combo=True)

    def _failed_exits(self, position: PositionRecord) -> List[OrderGroupRecord]:
        """The position's exit groups that ended with nothing filled (refused or cancelled unfilled), oldest first.
        Read from the records, so a restart keeps the count."""
        failed = [
            g
            for g in self._groups.values()
            if g.position_id == position.position_id
            and g.purpose is GroupPurpose.EXIT
            and g.status in (GroupStatus.FAILED, GroupStatus.CANCELED)
        ]
        return sorted(failed, key=lambda g: (g.created_at, g.group_id))

    def _exit_as_combo(self, position: PositionRecord) -> bool:
        """The route of the next exit: one combo for the first EXIT_COMBO_ATTEMPTS, then legging out (buys first).
        After MAX_EXIT_ATTEMPTS failures the position is flagged NEEDS ATTENTION (persisted, alerted once), which
        limits it to one exit attempt a day (engine._manage_positions)."""
        failed = self._failed_exits(position)
        if not failed:
            return True
        last = self._last_refusal.get(failed[-1].group_id) or failed[-1].decision or "cancelled unfilled"
        if len(failed) >= MAX_EXIT_ATTEMPTS and not position.attention:
            text = f"{NEEDS_ATTENTION}: exit failed {len(failed)} times, as a combo and legging out (last: {last})"
            self._set_position(replace(position, attention=text))
            self._alert(
                "needs-attention", f"position {position.position_id}: {text}", f"position-{position.position_id}"
            )
            self._attention_exit_day[position.position_id] = self._now.date()
        combo = len(failed) < EXIT_COMBO_ATTEMPTS
        self._log.info(
            f"engine: exit attempt {len(failed) + 1} of {position.position_id} "
            f"{'as one combo' if combo else 'legging out, buys first'}; the last one: {last}"
        )
        return combo

    def _exit(self, position: PositionRecord, reason: str, machine: Optional[StrategyMachine]) -> None:
        """Write the EXIT group ahead, mark the position CLOSING, move ACTIVE -> EXITING, flush, submit (one combo,
        or legging out once combos failed: `_exit_as_combo`)."""
        run_id = self._run_id
        group_id = new_record_id(f"{position.position_id}-exit", self._now, run_id, self._taken_ids())
        # what it holds now (shares an assignment delivered included), less what earlier exits already closed
        legs = exit_legs(settled_view(position, self._groups.values()), self._exit_fills(position.position_id))
        if not legs:
            self._alert("exit-refused", f"position {position.position_id} has no contracts to close", group_id)
            return
        if self._quotes_missing(f"{position.position_id}-exit", legs):
            return
        as_combo = self._exit_as_combo(position)
        position = self._positions[position.position_id]  # it may carry the attention flag now
        group = new_group(
            group_id, position.strategy_id, GroupPurpose.EXIT, position.position_id, legs, self._now, run_id
        )
        durable = self._set_group(group)
        durable = self._set_position(replace(position, status=PositionStatus.CLOSING)) and durable
        if machine is not None and durable:
            durable = self._move(machine, StrategyState.EXITING, f"exit: {reason}", group_id=group_id)
        durable = self._flush_write_ahead() and durable
        if not durable:
            self._alert("save-failed", f"exit {group_id} not durable; no order placed", group_id)
            self._set_group(mark_refused(self._groups[group_id], self._now), immediate=False)
            return
        self._log.info(f"engine: closing position {position.position_id} with {group_id}: {reason}")
        # shares (delivered by an assignment) go out as single orders: a combo of shares and contracts is no ratio
        self._submit(group_id, as_combo=as_combo and not any(is_share_key(leg.symbol) for leg in legs))

    # ------------------------------------------------------------------------------------------- recovery orders

    def _recovery_attempts(self, parent_id: str) -> int:
        return sum(1 for g in self._groups.values() if g.parent_group_id == parent_id)

    def _refused_attempts(self, parent_id: str) -> int:
        # Only refusals count towards giving up: an order cancelled unfilled (timeout, no liquidity) is simply
        # tried again, a broker that refuses the same order will refuse it again.
        return sum(
            1 for g in self._groups.values() if g.parent_group_id == parent_id and g.status is GroupStatus.FAILED
        )

    def _act_on_decision(self, decision: GroupDecision) -> None:
        """Persist the decision on the incomplete group, write its recovery group ahead, flush, submit (buys
        first, one order per leg so a refused buy stops the sells that it was meant to protect)."""
        parent = self._groups.get(decision.group_id)
        if parent is None:
            return
        text = decision.text
        if decision.action is DecisionAction.WAIT:
            # persisted once per reason (not every minute): the store would rewrite an unchanged-looking decision
            if decision.reason not in (parent.decision or ""):
                self._set_group(with_decision(parent, text, self._now), immediate=False)
            return
        attempts = self._recovery_attempts(parent.group_id)
        if self._refused_attempts(parent.group_id) >= MAX_RECOVERY_ATTEMPTS:
            self._give_up(parent, decision)
            return
        if decision.action is DecisionAction.ROLL_BACK and parent.purpose in _OPENING:
            # flatten the whole entry attempt, not just this group (see recovery.decisions.family_rollback_legs)
            decision = replace(decision, legs=family_rollback_legs(parent, self._groups))
            if not decision.legs:
                self._set_group(mark_resolved(parent, self._now, f"{text}: already flat"))
                return
        if self._quotes_missing(parent.group_id, decision.legs):
            return
        child_id = new_record_id(f"{parent.position_id}-rec{attempts + 1}", self._now, self._run_id, self._taken_ids())
        child = recovery_group(parent, decision, child_id, self._now, self._run_id)
        durable = self._set_group(with_decision(parent, text, self._now))
        durable = self._set_group(child) and durable
        durable = self._flush_write_ahead() and durable
        self._log.info(f"engine: RECOVERY {parent.group_id}: {decision.text} -> {child_id}")
        self._audit("recovery", f"{decision.text} -> {child_id}", f"group-{parent.group_id}")
        if not durable:
            self._alert("save-failed", f"recovery group {child_id} not durable; no order placed", child_id)
            self._set_group(mark_refused(self._groups[child_id], self._now), immediate=False)
            return
        self._submit(child_id, as_combo=False)

    # ------------------------------------------------------------------------------------------- prices first

    def _quotes_missing(self, key: str, legs: Sequence[LegSpec]) -> bool:
        """True while the orders for `legs` must wait for prices (nothing is written or sent meanwhile).

        LEAN refuses an order for a security with price 0 or no data (Algorithm/QCAlgorithm.Trading.cs
        `PreOrderChecksImpl`: SecurityPriceZero, SecurityHasNoData). A contract added right before ordering
        (add_option_contract) has none until its first data, unless LEAN seeded it; after a live restart
        `on_warmup_finished` runs before the first slice, so a completion sent there would be refused.
        The wait is bounded: `unfilled_timeout` of open market, then the orders go out anyway and a refusal
        is booked like any other (it counts towards giving up), so nothing waits forever."""
        try:
            missing = sorted(self._broker.symbols_without_price(legs))
        except Exception as error:
            self._log.error(f"engine: prices of {key} unavailable ({error!r}); ordering without the check")
            missing = []
        if not missing:
            if key in self._awaiting_quote:
                del self._awaiting_quote[key]
                self._log.info(f"engine: {key}: prices arrived, ordering")
            return False
        since = self._awaiting_quote.get(key)
        if key not in self._awaiting_quote:
            self._log.info(
                f"engine: {key}: waiting for a first price of {missing} before ordering "
                f"(LEAN refuses orders without one; at most {self._unfilled_timeout} of open market)"
            )
        if since is None:
            self._awaiting_quote[key] = self._now if self._market_open else None
            return True
        if self._now - since < self._unfilled_timeout:
            return True
        del self._awaiting_quote[key]
        self._alert(
            "no-price",
            f"{key}: still no price for {missing} after {self._unfilled_timeout} of open market; ordering anyway",
            key,
        )
        return False

    def _give_up(self, parent: OrderGroupRecord, decision: GroupDecision) -> None:
        """The broker refused this group's recovery orders MAX_RECOVERY_ATTEMPTS times: stop sending them and
        hand the exposure over as a NEEDS ATTENTION position, still managed like any other.

        The incomplete group becomes RESOLVED with a decision text that starts with NEEDS_ATTENTION (persisted,
        so a restart does not decide it again and resend what the broker refused). Then:
        - an opening family (no position yet): nothing of it is moving any more, so settling builds the position
          from the family's net fills and it takes over the attention text (`_build_position`); from then on the
          position, not the incomplete groups, claims the shorts, so reconcile never adopts them;
        - a position's exit given up half way: the exit's fills stand (it keeps claiming them while the position
          is open), the position is reopened with the attention text, and its next exit orders only the rest.
        Either way the strategy keeps managing it (exit rules, breakers, CLOSE_ALL), at most one exit attempt a
        day while it needs attention (`_manage_positions`)."""
        refused = self._refused_attempts(parent.group_id)
        reasons = [
            self._last_refusal[g.group_id]
            for g in self._children_of(parent.group_id)
            if g.group_id in self._last_refusal
        ]
        broker_reason = reasons[-1] if reasons else "the broker's reason was given before this run (see the log)"
        text = (
            f"{NEEDS_ATTENTION}: gave up after {refused} refused recovery orders (broker: {broker_reason}); "
            f"last decision: {decision.text}"
        )
        self._set_group(mark_resolved(parent, self._now, text))
        position = self._positions.get(parent.position_id)
        if position is not None:
            self._set_position(replace(position, attention=text))
        self._alert("needs-attention", f"group {parent.group_id}: {text}", f"group-{parent.group_id}")
        self._flush()

    def _children_of(self, parent_id: str) -> List[OrderGroupRecord]:
        return sorted(
            (g for g in self._groups.values() if g.parent_group_id == parent_id),
            key=lambda g: (g.created_at, g.group_id),
        )

    def _exit_fills(self, position_id: str) -> Dict[str, int]:
        """What earlier (given-up) exits of the position already closed, net per contract."""
        return net_fills(
            g for g in self._groups.values() if g.position_id == position_id and g.purpose is GroupPurpose.EXIT
        )

    # ------------------------------------------------------------------------------------------- submission

    def _submit(self, group_id: str, as_combo: bool) -> None:
        """Place the group's pending legs. Events may arrive (re-entrantly) before the broker call returns, so
        the group is re-read from memory afterwards, never kept in a local across the call."""
        group = self._groups[group_id]
        legs = pending_legs(group)
        self._submitting.add(group_id)
        orders: List[SubmittedOrder] = []
        refused: List[str] = []
        failed = False
        try:
            if as_combo and len(legs) > 1:
                orders = list(self._broker.submit_combo(legs, group_id))
                if not orders:
                    refused = [leg.symbol for leg in legs]
            else:
                orders, refused = self._submit_singles(legs, group_id)
        except Exception as error:
            # orders may or may not exist now: holdings will tell (reconcile), events still map by tag
            failed = True
            refused = [leg.symbol for leg in legs if leg.symbol not in {o.symbol for o in orders}]
            self._alert("submit-failed", f"submitting {group_id} raised {error!r}", f"group-{group_id}")
            self._reconcile_pending = True
        finally:
            self._submitting.discard(group_id)
        current = self._groups[group_id]
        if orders:
            current = mark_submitted(current, orders, self._now)
        if refused:
            current = mark_refused(current, self._now, refused)
            if not failed:
                reason = self._refusal_reason(group_id)
                self._last_refusal[group_id] = reason
                self._alert("order-refused", f"broker refused {', '.join(refused)} of {group_id}: {reason}", group_id)
        self._set_group(current)
        self._settle()

    def _refusal_reason(self, group_id: str) -> str:
        try:
            reason = self._broker.refusal_reason(group_id)
        except Exception as error:
            return f"reason unavailable ({error!r})"
        # a synchronous refusal may have come as an Invalid event before the call returned (engine._book_event)
        return reason or self._last_refusal.get(group_id) or "no reason given"

    def _submit_singles(self, legs: Sequence[LegSpec], group_id: str) -> tuple[List[SubmittedOrder], List[str]]:
        orders: List[SubmittedOrder] = []
        for index, leg in enumerate(legs):
            order = self._broker.submit_single(leg, group_id)
            if order is None:
                # stop here: the legs after a refused buy are the sells it was meant to protect
                return orders, [later.symbol for later in legs[index:]]
            orders.append(order)
        return orders, []

    # ------------------------------------------------------------------------------------------- cancels

    def _cancel_overdue(self) -> None:
        """Groups with legs open longer than the timeout: cancel those orders; if the broker no longer knows
        them one more timeout later, close the legs in the records and let reconcile read holdings."""
        now = self._now
        for group_id in sorted(self._groups):
            group = self._groups[group_id]
            legs = open_legs(group)
            if not legs or group_id in self._submitting or now - group.updated_at < self._unfilled_timeout:
                continue
            order_ids = [oid for leg in legs for oid in leg.order_ids]
            requested = self._cancel_requested.get(group_id)
            if order_ids and requested is None:
                self._cancel_requested[group_id] = now
                self._log.info(f"engine: {group_id} unfilled since {group.updated_at}: cancelling {order_ids}")
                self._cancel_orders(order_ids)
                continue
            if requested is not None and now - requested < self._unfilled_timeout:
                continue
            if order_ids and set(order_ids) & set(self._open_order_ids()):
                self._cancel_requested[group_id] = now  # still open at the broker: ask again, wait again
                self._cancel_orders(order_ids)
                continue
            # no order exists for these legs (never placed, or gone without an event): they are dead
            self._alert("legs-closed", f"{group_id}: open legs without a live order closed in the records", group_id)
            self._set_group(cancel_open_legs(group, now))
            self._cancel_requested.pop(group_id, None)
            self._reconcile_pending = True

    def _cancel_orders(self, order_ids: Sequence[int]) -> None:
        for order_id in order_ids:
            try:
                self._broker.cancel(order_id)
            except Exception as error:
                self._log.error(f"engine: cancelling order {order_id} failed: {error!r}")

    def _open_order_ids(self) -> Sequence[int]:
        try:
            return list(self._broker.open_order_ids())
        except Exception as error:
            self._log.error(f"engine: open orders unavailable: {error!r}")
            return []


__all__ = ["EngineOrders"]
