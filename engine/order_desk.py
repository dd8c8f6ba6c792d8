"""The order desk: placing and cancelling orders, always write-ahead.

The group (and the strategy state that explains it) is saved and flushed BEFORE the broker hears of it, so a
crash at any point leaves a record that recovery can match with holdings. Order of every submission:
1. save the PENDING group (immediate put);
2. move the strategy (ENTERING/EXITING) or mark the parent's decision, also an immediate put;
3. flush (LEAN's LocalObjectStore writes pending saves to disk; elsewhere a no-op we cannot check);
4. only if 1 and 2 were accepted by the store: submit. Otherwise the group is marked refused (FAILED) and
   nothing is placed.

After every submission the desk calls `settle` (engine/settlement.py `Settlement.settle`, handed in by the
engine as a callable because settling in turn acts through this desk). Events may arrive re-entrantly inside a
broker call, so a group is re-read from the shared state after the call, never kept in a local across it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Callable, Dict, List, Optional, Sequence, Union

from core.contracts import is_share_key
from core.order_groups import (
    cancel_open_legs,
    mark_refused,
    mark_resolved,
    mark_submitted,
    new_group,
    open_legs,
    pending_legs,
    with_decision,
)
from core.ports import BrokerPort, LegSpec, LogPort, SubmittedOrder
from core.records import (
    OPENING_PURPOSES,
    GroupPurpose,
    GroupStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    StrategyState,
)
from core.state_machine import StrategyMachine
from engine.facts import NEEDS_ATTENTION, exit_legs, facts_of, net_fills, new_record_id, reduce_legs, settled_view
from engine.ledger import Ledger
from engine.limit_entries import EntryLimit, LimitEntries
from engine.protocols import EXIT_COMBO_ATTEMPTS, MAX_EXIT_ATTEMPTS, MAX_RECOVERY_ATTEMPTS
from engine.state import EngineState
from recovery.decisions import DecisionAction, GroupDecision, family_rollback_legs, recovery_group
from strategies.base import EntryPlan


class OrderDesk:
    def __init__(
        self,
        state: EngineState,
        ledger: Ledger,
        *,
        broker: BrokerPort,
        log: LogPort,
        unfilled_timeout: timedelta,
        settle: Callable[[], None],
        limits: Optional[LimitEntries] = None,
    ) -> None:
        self._state = state
        self._ledger = ledger
        self._broker = broker
        self._log = log
        self._unfilled_timeout = unfilled_timeout
        self._settle = settle  # Settlement.settle, late-bound by the engine (settling acts through this desk)
        self._limits = limits  # entries as walked combo limit orders; None: combo market orders

    def enter(self, machine: StrategyMachine, plan: EntryPlan, vix: Optional[float]) -> None:
        """Write the ENTRY group ahead, move WAITING -> ENTERING (durable), flush, then submit the combo."""
        strategy_id = machine.strategy_id
        run_id = self._ledger.run_id
        if self.quotes_missing(f"{strategy_id}-entry", plan.legs):
            return
        limit = self._entry_limit(strategy_id, plan)
        if isinstance(limit, str):
            return
        position_id = new_record_id(strategy_id, self._state.now, run_id, self._state.taken_ids())
        group_id = f"{position_id}-entry"
        try:
            group = new_group(
                group_id, strategy_id, GroupPurpose.ENTRY, position_id, plan.legs, self._state.now, run_id
            )
        except ValueError as error:
            self._ledger.alert("entry-refused", f"{strategy_id}: entry plan has bad legs: {error}", strategy_id)
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
        group_saved = self._ledger.set_group(group)
        state_saved = False
        if group_saved:
            state_saved = self._ledger.move(
                machine,
                StrategyState.ENTERING,
                f"entry: {plan.reason}",
                position_id=position_id,
                group_id=group_id,
                last_entry_day=self._state.now.date(),
            )
        flushed = self._ledger.flush_write_ahead()
        if not (group_saved and state_saved and flushed):
            self.abandon_unwritten(f"{strategy_id}: entry", group_id)
            if machine.state is StrategyState.ENTERING:
                self._ledger.move(machine, StrategyState.WAITING, "entry not durable: nothing placed", position_id=None)
            return
        self._log.info(f"engine: {strategy_id} entering {group_id} ({plan.units} units): {plan.reason}")
        self.submit(group_id, as_combo=True, limit=limit)

    def _entry_limit(self, strategy_id: str, plan: EntryPlan) -> Union[EntryLimit, str, None]:
        """The limit of an entry (engine/limit_entries.py); None: a market order; a reason: no entry now (even
        the mid is beyond the bound), alerted."""
        if self._limits is None or len(plan.legs) < 2:
            return None
        limit = self._limits.first_limit(plan.legs, for_credit=plan.est_net_price < 0)
        if limit is None:
            self._log.info(f"engine: {strategy_id} entry: a leg has no usable quote; sent as a market order")
        elif isinstance(limit, str):
            self._ledger.alert("entry-unpriced", f"{strategy_id}: {plan.reason}: {limit}; no entry", strategy_id)
        return limit

    def _failed_exits(self, position: PositionRecord) -> List[OrderGroupRecord]:
        """The position's exit groups that ended with nothing filled (refused or cancelled unfilled), oldest first.
        Read from the records, so a restart keeps the count."""
        failed = [
            g
            for g in self._state.groups.values()
            if g.position_id == position.position_id
            and g.purpose is GroupPurpose.EXIT
            and g.status in (GroupStatus.FAILED, GroupStatus.CANCELED)
        ]
        return sorted(failed, key=lambda g: (g.created_at, g.group_id))

    def _exit_as_combo(self, position: PositionRecord) -> bool:
        """The route of the next exit: one combo for the first EXIT_COMBO_ATTEMPTS, then legging out (buys first).
        After MAX_EXIT_ATTEMPTS failures the position is flagged NEEDS ATTENTION (persisted, alerted once), which
        limits it to one exit attempt a day (engine/trading_loop.py `manage_positions`)."""
        failed = self._failed_exits(position)
        if not failed:
            return True
        last = self._state.last_refusal.get(failed[-1].group_id) or failed[-1].decision or "cancelled unfilled"
        if len(failed) >= MAX_EXIT_ATTEMPTS and not position.attention:
            text = f"{NEEDS_ATTENTION}: exit failed {len(failed)} times, as a combo and legging out (last: {last})"
            self._ledger.set_position(replace(position, attention=text))
            self._ledger.alert(
                "needs-attention", f"position {position.position_id}: {text}", f"position-{position.position_id}"
            )
            self._state.attention_exit_day[position.position_id] = self._state.now.date()
        combo = len(failed) < EXIT_COMBO_ATTEMPTS
        self._log.info(
            f"engine: exit attempt {len(failed) + 1} of {position.position_id} "
            f"{'as one combo' if combo else 'legging out, buys first'}; the last one: {last}"
        )
        return combo

    def exit(self, position: PositionRecord, reason: str, machine: Optional[StrategyMachine]) -> None:
        """Write the EXIT group ahead, mark the position CLOSING, move ACTIVE -> EXITING, flush, submit (one combo,
        or legging out once combos failed: `_exit_as_combo`)."""
        run_id = self._ledger.run_id
        group_id = new_record_id(f"{position.position_id}-exit", self._state.now, run_id, self._state.taken_ids())
        # what it holds now (shares an assignment delivered included), less what earlier exits already closed
        legs = exit_legs(settled_view(position, self._state.groups.values()), self._exit_fills(position.position_id))
        if not legs:
            self._ledger.alert("exit-refused", f"position {position.position_id} has no contracts to close", group_id)
            return
        if self.quotes_missing(f"{position.position_id}-exit", legs):
            return
        as_combo = self._exit_as_combo(position)
        position = self._state.positions[position.position_id]  # it may carry the attention flag now
        group = new_group(
            group_id, position.strategy_id, GroupPurpose.EXIT, position.position_id, legs, self._state.now, run_id
        )
        durable = self._ledger.set_group(group)
        durable = self._ledger.set_position(replace(position, status=PositionStatus.CLOSING)) and durable
        if machine is not None and durable:
            durable = self._ledger.move(machine, StrategyState.EXITING, f"exit: {reason}", group_id=group_id)
        durable = self._ledger.flush_write_ahead() and durable
        if not durable:
            self.abandon_unwritten("exit", group_id)
            return
        self._log.info(f"engine: closing position {position.position_id} with {group_id}: {reason}")
        # shares (delivered by an assignment) go out as single orders: a combo of shares and contracts is no ratio
        self.submit(group_id, as_combo=as_combo and not any(is_share_key(leg.symbol) for leg in legs))

    def reduce(self, position: PositionRecord, units: int, reason: str, machine: StrategyMachine) -> None:
        """A partial close: write the REDUCE group ahead (the position stays OPEN), move ACTIVE -> EXITING, flush,
        submit one combo. Its fills change what the position holds (engine/facts.py `position_holdings`); an
        incomplete one is completed by recovery like an exit."""
        run_id = self._ledger.run_id
        legs = reduce_legs(settled_view(position, self._state.groups.values()), units)
        if not legs:
            self._log.error(f"engine: {position.position_id}: cannot close {units} unit(s) of what it holds")
            return
        if self.quotes_missing(f"{position.position_id}-reduce", legs):
            return
        group_id = new_record_id(f"{position.position_id}-reduce", self._state.now, run_id, self._state.taken_ids())
        group = new_group(
            group_id, position.strategy_id, GroupPurpose.REDUCE, position.position_id, legs, self._state.now, run_id
        )
        durable = self._ledger.set_group(group)
        if durable:
            durable = self._ledger.move(machine, StrategyState.EXITING, f"reduce: {reason}", group_id=group_id)
        durable = self._ledger.flush_write_ahead() and durable
        if not durable:
            self.abandon_unwritten("reduce", group_id)
            return
        self._log.info(f"engine: closing {units} unit(s) of {position.position_id} with {group_id}: {reason}")
        self.submit(group_id, as_combo=True)

    def abandon_unwritten(self, what: str, group_id: str) -> None:
        """Write-ahead failed (the group or the state move is not durable): no order goes out; the group is
        marked refused (FAILED) and said, so nothing is placed that a restart could not find."""
        self._ledger.alert("save-failed", f"{what} {group_id} not durable; no order placed", group_id)
        self._ledger.set_group(mark_refused(self._state.groups[group_id], self._state.now), immediate=False)

    def _recovery_attempts(self, parent_id: str) -> int:
        return sum(1 for g in self._state.groups.values() if g.parent_group_id == parent_id)

    def _refused_attempts(self, parent_id: str) -> int:
        # Only refusals count towards giving up: an order cancelled unfilled (timeout, no liquidity) is simply
        # tried again, a broker that refuses the same order will refuse it again.
        return sum(
            1 for g in self._state.groups.values() if g.parent_group_id == parent_id and g.status is GroupStatus.FAILED
        )

    def act_on_decision(self, decision: GroupDecision) -> None:
        """Persist the decision on the incomplete group, write its recovery group ahead, flush, submit (buys
        first, one order per leg so a refused buy stops the sells that it was meant to protect)."""
        parent = self._state.groups.get(decision.group_id)
        if parent is None:
            return
        text = decision.text
        if decision.action is DecisionAction.WAIT:
            # persisted once per reason (not every minute): the store would rewrite an unchanged-looking decision
            if decision.reason not in (parent.decision or ""):
                self._ledger.set_group(with_decision(parent, text, self._state.now), immediate=False)
            return
        attempts = self._recovery_attempts(parent.group_id)
        if self._refused_attempts(parent.group_id) >= MAX_RECOVERY_ATTEMPTS:
            self._give_up(parent, decision)
            return
        if decision.action is DecisionAction.ROLL_BACK and parent.purpose in OPENING_PURPOSES:
            # flatten the whole entry attempt, not just this group (see recovery.decisions.family_rollback_legs)
            decision = replace(decision, legs=family_rollback_legs(parent, self._state.groups))
            if not decision.legs:
                self._ledger.set_group(mark_resolved(parent, self._state.now, f"{text}: already flat"))
                return
        if self.quotes_missing(parent.group_id, decision.legs):
            return
        child_id = new_record_id(
            f"{parent.position_id}-rec{attempts + 1}", self._state.now, self._ledger.run_id, self._state.taken_ids()
        )
        child = recovery_group(parent, decision, child_id, self._state.now, self._ledger.run_id)
        durable = self._ledger.set_group(with_decision(parent, text, self._state.now))
        durable = self._ledger.set_group(child) and durable
        durable = self._ledger.flush_write_ahead() and durable
        self._log.info(f"engine: RECOVERY {parent.group_id}: {decision.text} -> {child_id}")
        self._ledger.audit("recovery", f"{decision.text} -> {child_id}", f"group-{parent.group_id}")
        if not durable:
            self.abandon_unwritten("recovery group", child_id)
            return
        self.submit(child_id, as_combo=False)

    def quotes_missing(self, key: str, legs: Sequence[LegSpec]) -> bool:
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
            if key in self._state.awaiting_quote:
                del self._state.awaiting_quote[key]
                self._log.info(f"engine: {key}: prices arrived, ordering")
            return False
        since = self._state.awaiting_quote.get(key)
        if key not in self._state.awaiting_quote:
            self._log.info(
                f"engine: {key}: waiting for a first price of {missing} before ordering "
                f"(LEAN refuses orders without one; at most {self._unfilled_timeout} of open market)"
            )
        if since is None:
            self._state.awaiting_quote[key] = self._state.now if self._state.market_open else None
            return True
        if self._state.now - since < self._unfilled_timeout:
            return True
        del self._state.awaiting_quote[key]
        self._ledger.alert(
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
          from the family's net fills and it takes over the attention text (engine/settlement.py); from then on the
          position, not the incomplete groups, claims the shorts, so reconcile never adopts them;
        - a position's exit given up half way: the exit's fills stand (it keeps claiming them while the position
          is open), the position is reopened with the attention text, and its next exit orders only the rest.
        Either way the strategy keeps managing it (exit rules, breakers, CLOSE_ALL), at most one exit attempt a
        day while it needs attention (engine/trading_loop.py `manage_positions`)."""
        refused = self._refused_attempts(parent.group_id)
        reasons = [
            self._state.last_refusal[g.group_id]
            for g in self._children_of(parent.group_id)
            if g.group_id in self._state.last_refusal
        ]
        broker_reason = reasons[-1] if reasons else "the broker's reason was given before this run (see the log)"
        text = (
            f"{NEEDS_ATTENTION}: gave up after {refused} refused recovery orders (broker: {broker_reason}); "
            f"last decision: {decision.text}"
        )
        self._ledger.set_group(mark_resolved(parent, self._state.now, text))
        position = self._state.positions.get(parent.position_id)
        if position is not None:
            self._ledger.set_position(replace(position, attention=text))
        self._ledger.alert("needs-attention", f"group {parent.group_id}: {text}", f"group-{parent.group_id}")
        self._ledger.flush()

    def _children_of(self, parent_id: str) -> List[OrderGroupRecord]:
        return sorted(
            (g for g in self._state.groups.values() if g.parent_group_id == parent_id),
            key=lambda g: (g.created_at, g.group_id),
        )

    def _exit_fills(self, position_id: str) -> Dict[str, int]:
        """What earlier (given-up) exits of the position already closed, net per contract."""
        return net_fills(
            g for g in self._state.groups.values() if g.position_id == position_id and g.purpose is GroupPurpose.EXIT
        )

    def submit(self, group_id: str, as_combo: bool, limit: Optional[EntryLimit] = None) -> None:
        """Place the group's pending legs (one combo limit order walked toward the far side, when `limit` is
        given). Events may arrive (re-entrantly) before the broker call returns, so the group is re-read from
        memory afterwards, never kept in a local across the call."""
        group = self._state.groups[group_id]
        legs = pending_legs(group)
        self._state.submitting.add(group_id)
        orders: List[SubmittedOrder] = []
        refused: List[str] = []
        failed = False
        try:
            if as_combo and len(legs) > 1 and limit is not None and self._limits is not None:
                orders = list(self._broker.submit_combo_limit(legs, limit.first, group_id))
                if orders:
                    self._limits.start(group_id, orders[0].order_id, legs, limit)
                else:
                    refused = [leg.symbol for leg in legs]
            elif as_combo and len(legs) > 1:
                orders = list(self._broker.submit_combo(legs, group_id))
                if not orders:
                    refused = [leg.symbol for leg in legs]
            else:
                orders, refused = self._submit_singles(legs, group_id)
        except Exception as error:
            # orders may or may not exist now: holdings will tell (reconcile), events still map by tag
            failed = True
            refused = [leg.symbol for leg in legs if leg.symbol not in {o.symbol for o in orders}]
            self._ledger.alert("submit-failed", f"submitting {group_id} raised {error!r}", f"group-{group_id}")
            self._state.reconcile_pending = True
        finally:
            self._state.submitting.discard(group_id)
        current = self._state.groups[group_id]
        if orders:
            current = mark_submitted(current, orders, self._state.now)
        if refused:
            current = mark_refused(current, self._state.now, refused)
            if not failed:
                reason = self._refusal_reason(group_id)
                self._state.last_refusal[group_id] = reason
                self._ledger.alert(
                    "order-refused", f"broker refused {', '.join(refused)} of {group_id}: {reason}", group_id
                )
        self._ledger.set_group(current)
        self._settle()

    def _refusal_reason(self, group_id: str) -> str:
        try:
            reason = self._broker.refusal_reason(group_id)
        except Exception as error:
            return f"reason unavailable ({error!r})"
        # a synchronous refusal may have come as an Invalid event before the call returned
        # (engine/settlement.py `book_order_event`)
        return reason or self._state.last_refusal.get(group_id) or "no reason given"

    def _submit_singles(self, legs: Sequence[LegSpec], group_id: str) -> tuple[List[SubmittedOrder], List[str]]:
        orders: List[SubmittedOrder] = []
        for index, leg in enumerate(legs):
            order = self._broker.submit_single(leg, group_id)
            if order is None:
                # stop here: the legs after a refused buy are the sells it was meant to protect
                return orders, [later.symbol for later in legs[index:]]
            orders.append(order)
        return orders, []

    def cancel_overdue(self) -> None:
        """Groups with legs open longer than the timeout: cancel those orders; if the broker no longer knows
        them one more timeout later, close the legs in the records and let reconcile read holdings."""
        now = self._state.now
        for group_id in sorted(self._state.groups):
            group = self._state.groups[group_id]
            legs = open_legs(group)
            if not legs or group_id in self._state.submitting or now - group.updated_at < self._unfilled_timeout:
                continue
            if self._limits is not None and self._limits.holds(group_id, self._unfilled_timeout):
                continue  # a limit entry still being walked toward the far side
            order_ids = [oid for leg in legs for oid in leg.order_ids]
            requested = self._state.cancel_requested.get(group_id)
            if order_ids and requested is None:
                self._state.cancel_requested[group_id] = now
                self._log.info(f"engine: {group_id} unfilled since {group.updated_at}: cancelling {order_ids}")
                self.cancel_orders(order_ids)
                continue
            if requested is not None and now - requested < self._unfilled_timeout:
                continue
            if order_ids and set(order_ids) & set(self.open_order_ids()):
                self._state.cancel_requested[group_id] = now  # still open at the broker: ask again, wait again
                self.cancel_orders(order_ids)
                continue
            # no order exists for these legs (never placed, or gone without an event): they are dead
            self._ledger.alert(
                "legs-closed", f"{group_id}: open legs without a live order closed in the records", group_id
            )
            self._ledger.set_group(cancel_open_legs(group, now))
            self._state.cancel_requested.pop(group_id, None)
            self._state.reconcile_pending = True

    def cancel_orders(self, order_ids: Sequence[int]) -> None:
        for order_id in order_ids:
            try:
                self._broker.cancel(order_id)
            except Exception as error:
                self._log.error(f"engine: cancelling order {order_id} failed: {error!r}")

    def open_order_ids(self) -> Sequence[int]:
        try:
            return list(self._broker.open_order_ids())
        except Exception as error:
            self._log.error(f"engine: open orders unavailable: {error!r}")
            return []


__all__ = ["OrderDesk"]
