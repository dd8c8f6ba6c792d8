"""Exercise, assignment and expiry, booked as what they are.

LEAN closes a held contract without an order of ours through an OrderType.OPTION_EXERCISE order
(Common/Orders/OptionExercise/DefaultExerciseModel.cs `OptionExercise`): at expiry (out of the money the
contract simply fills at 0), or by exercise/assignment in the money, at expiry or early (a short can be
assigned any day; BacktestingBrokerage simulates it near expiry). The contract's event fills at 0 for the
closing quantity (`is_assignment` when it was short and in the money). A physically settled contract (SPY)
then delivers shares at the strike under the same order id, in a second event; a cash-settled one (SPX) is
credited its intrinsic value by the portfolio (Common/Securities/Option/OptionPortfolioModel.cs
`ProcessCloseTradeProfit`), which no event carries, so it is booked here as a fill at the intrinsic value of
the underlying's close: the same cash.

Booking (invariants):
- one SETTLEMENT group per exercise order and owning position, FILLED from the start, saved and flushed before
  anything else; its legs are the closed contract and, physically settled in the money, the shares the
  exercise delivers (booked with the contract's event: both events come from one exercise, so a crash
  between them loses nothing, and the delivery event only confirms it);
- an event counts once (its fill key "run/order/event" is on the leg);
- afterwards the position holds `engine.facts.position_holdings`; nothing left -> CLOSED with its realized
  P&L; anything left is flattened at the next open market, write-ahead: delivered shares first, by a
  SETTLEMENT group of their own (single market orders; a partial fill is completed like an exit), then the
  rest of the structure by an ordinary EXIT group: a careful trader keeps neither assigned shares nor half a
  structure;
- each step is a record, so a restart finds where it was (settled, not flattened -> flattened at the open).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Callable, Dict, List, Optional, Tuple

from core.contracts import (
    REGULAR_CLOSE,
    SHARE_EXPIRY,
    SHARE_RIGHT,
    SHARE_STRIKE,
    SHARES_PER_CONTRACT,
    is_share_key,
    parse_contract_key,
)
from core.order_groups import apply_holdings_fill, new_group, open_legs
from core.ports import BrokerPort, EventStatus, LegSpec, LogPort, OrderEventData
from core.records import (
    OPENING_PURPOSES,
    GroupPurpose,
    GroupStatus,
    LegRecord,
    LegStatus,
    OrderGroupRecord,
    PositionRecord,
    PositionStatus,
    Right,
)
from engine.facts import is_settled, new_record_id, position_holdings
from engine.ledger import Ledger
from engine.order_desk import OrderDesk
from engine.state import EngineState
from recovery.reconcile import claims


def intrinsic_value(right: Right, strike: float, underlying_price: float) -> float:
    """Common/Securities/Option/Option.cs `GetIntrinsicValue` (OptionPayoff): what one unit is worth at expiry."""
    return max(0.0, underlying_price - strike) if right is Right.CALL else max(0.0, strike - underlying_price)


def delivered_shares(right: Right, closing_quantity: int) -> int:
    """Option.cs `GetExerciseQuantity`: shares that change hands for an exercise order of `closing_quantity`
    (short put assigned: +; long put exercised: -; short call assigned: -; long call exercised: +)."""
    return (-1 if right is Right.CALL else 1) * closing_quantity * SHARES_PER_CONTRACT


def _share_leg(symbol: str, quantity: int, price: float, fill_key: str) -> LegRecord:
    """A filled leg of delivered shares. No order id: the exercise order's id is on the contract's leg (order ids
    are unique within a group, persistence.validation)."""
    return LegRecord(
        symbol=symbol,
        underlying=symbol,
        right=SHARE_RIGHT,
        strike=SHARE_STRIKE,
        expiry=SHARE_EXPIRY,
        quantity=quantity,
        filled_quantity=quantity,
        avg_fill_price=price,
        status=LegStatus.FILLED,
        fill_keys=(fill_key,),
    )


def _closed_option_leg(
    symbol: str, quantity: int, price: float, fill_key: str, order_ids: Tuple[int, ...] = ()
) -> LegRecord:
    """A filled leg of a contract the broker closed (exercise, assignment, expiry) by `quantity` at `price`."""
    parsed = parse_contract_key(symbol)
    if parsed is None:
        raise ValueError(f"{symbol!r} is not a contract key")
    underlying, expiry, right, strike = parsed
    return LegRecord(
        symbol=symbol,
        underlying=underlying,
        right=right,
        strike=strike,
        expiry=expiry,
        quantity=quantity,
        filled_quantity=quantity,
        avg_fill_price=price,
        status=LegStatus.FILLED,
        order_ids=order_ids,
        fill_keys=(fill_key,),
    )


class ExerciseBooking:
    def __init__(
        self,
        state: EngineState,
        ledger: Ledger,
        *,
        desk: OrderDesk,
        broker: BrokerPort,
        log: LogPort,
        settle: Callable[[], None],
    ) -> None:
        self._state = state
        self._ledger = ledger
        self._desk = desk
        self._broker = broker
        self._log = log
        self._settle = settle  # Settlement.settle, late-bound by the engine (settling acts through the desk)

    def book_exercise(self, event: OrderEventData) -> None:
        """An event of an OptionExercise order (or one flagged as an assignment)."""
        if event.status is not EventStatus.FILLED or not event.fill_quantity:
            self._log.info(f"engine: exercise order {event.order_id}: {event.status.value}, nothing to book")
            return
        if is_share_key(event.symbol):
            self._book_delivery(event)
            return
        fill_key = f"{self._ledger.run_id}/{event.order_id}/{event.event_id}"
        if any(fill_key in leg.fill_keys for g in self._state.groups.values() for leg in g.legs):
            return  # already booked
        kind = "assignment" if event.is_assignment else "exercise" if event.in_the_money else "expiry"
        left = self._settle_contract(event, kind, fill_key)
        if left:
            self._ledger.alert(
                "exercise-unowned",
                f"{kind} of {event.symbol} {left:+d} (order {event.order_id}) matches no open position; "
                "reconcile decides",
                event.symbol,
            )
            self._state.reconcile_pending = True
        self._settle()

    def _settle_contract(self, event: OrderEventData, kind: str, fill_key: str) -> int:
        """Book the contract's fill on the positions holding it (oldest first); returns what no position held."""
        parsed = parse_contract_key(event.symbol)
        if parsed is None:
            return event.fill_quantity
        underlying, _, right, strike = parsed
        price = 0.0
        if event.cash_settled and event.in_the_money:
            spot = event.underlying_price if event.underlying_price is not None else self._view_price()
            price = intrinsic_value(right, strike, spot) if spot is not None else 0.0
        left = event.fill_quantity
        for position, held in self._owners(event.symbol, left):
            quantity = (1 if left > 0 else -1) * min(abs(left), abs(held))
            order_ids = (event.order_id,) if event.order_id >= 0 else ()
            option = _closed_option_leg(event.symbol, quantity, price, fill_key, order_ids)
            legs: Tuple[LegRecord, ...] = (option,)
            if event.in_the_money and not event.cash_settled:
                shares = delivered_shares(right, quantity)
                legs = (option, _share_leg(underlying, shares, strike, f"{fill_key}/delivery"))
            self._save_settlement(position, legs, kind, event.message)
            left -= quantity
            if not left:
                break
        return left

    def _owners(self, symbol: str, closing: int) -> List[Tuple[PositionRecord, int]]:
        """Open positions holding `symbol` on the side a fill of `closing` closes, with what each holds."""
        found = []
        for _, position in sorted(self._state.positions.items()):
            if position.status is PositionStatus.CLOSED:
                continue
            held = position_holdings(position, self._state.groups.values()).get(symbol, 0)
            if held and (held > 0) != (closing > 0):
                found.append((position, held))
        return found

    def _save_settlement(
        self, position: PositionRecord, legs: Tuple[LegRecord, ...], kind: str, message: str
    ) -> OrderGroupRecord:
        return self._save_settlement_of(position.position_id, position.strategy_id, legs, kind, message)

    def _save_settlement_of(
        self, position_id: str, strategy_id: str, legs: Tuple[LegRecord, ...], kind: str, message: str
    ) -> OrderGroupRecord:
        run_id = self._ledger.run_id
        group_id = new_record_id(f"{position_id}-settle", self._state.now, run_id, self._state.taken_ids())
        group = OrderGroupRecord(
            group_id=group_id,
            strategy_id=strategy_id,
            purpose=GroupPurpose.SETTLEMENT,
            position_id=position_id,
            legs=legs,
            status=GroupStatus.FILLED,
            created_at=self._state.now,
            updated_at=self._state.now,
            run_id=run_id,
            decision=f"{kind}: {message}" if message else kind,
        )
        self._ledger.set_group(group)
        self._ledger.flush()
        what = ", ".join(f"{leg.symbol} {leg.filled_quantity:+d} at {leg.avg_fill_price:g}" for leg in legs)
        self._ledger.alert(kind, f"position {position_id}: {kind} booked ({what}) -> {group_id}", group_id)
        return group

    def _book_delivery(self, event: OrderEventData) -> None:
        """The underlying's event of an exercise: the shares were booked with the contract's event; a delivery
        we did not expect is booked on the settlement of the same order, or left to reconcile."""
        run_id = self._ledger.run_id
        settlements = [
            g
            for _, g in sorted(self._state.groups.items())
            if g.purpose is GroupPurpose.SETTLEMENT
            and g.run_id == run_id
            and any(event.order_id in leg.order_ids for leg in g.legs)
        ]
        if any(is_share_key(leg.symbol) for g in settlements for leg in g.legs):
            self._log.info(f"engine: delivery {event.symbol} {event.fill_quantity:+d} already booked")
            return
        if not settlements:
            self._ledger.alert("delivery-unowned", f"{event.symbol} {event.fill_quantity:+d} delivered: no settlement")
            self._state.reconcile_pending = True
            return
        group = settlements[0]
        fill_key = f"{run_id}/{event.order_id}/{event.event_id}"
        share = _share_leg(event.symbol, event.fill_quantity, event.fill_price, fill_key)
        self._ledger.set_group(replace(group, legs=(*group.legs, share), updated_at=self._state.now))
        self._ledger.flush()
        self._ledger.alert("delivery", f"{event.symbol} {event.fill_quantity:+d} delivered, booked on {group.group_id}")
        self._settle()

    def _view_price(self) -> Optional[float]:
        view = self._state.view
        return view.price if view is not None else None

    def flatten_settled(self) -> None:
        """At an open market: every position an exercise or assignment touched is closed in full, write-ahead
        like any order. First the delivered shares, by a single order of their own (a contract that cannot be
        traded right now never holds them up); then what is left of the structure, by an ordinary exit that the
        trading loop sends (engine/trading_loop.py `manage_positions`, asking `settled_remainder`), with its
        escalation and bounds."""
        for position_id, position in sorted(self._state.positions.items()):
            if position.status is not PositionStatus.OPEN or self._state.in_flight_for_position(position_id):
                continue
            groups = self._state.groups.values()
            if not is_settled(position, groups):
                continue
            held = position_holdings(position, groups)
            shares = {symbol: quantity for symbol, quantity in held.items() if is_share_key(symbol)}
            if shares:
                self._sell_shares(position, shares)

    def settled_remainder(self, position: PositionRecord) -> bool:
        """True when an exercise, assignment or expiry left contracts of this position (and no shares): they are
        closed, whatever the strategy's rules would say about half a structure."""
        groups = self._state.groups.values()
        if not is_settled(position, groups):
            return False
        held = position_holdings(position, groups)
        return bool(held) and not any(is_share_key(symbol) for symbol in held)

    def _sell_shares(self, position: PositionRecord, shares: Dict[str, int]) -> None:
        """A SETTLEMENT group that closes the delivered shares: saved and flushed, then one market order each."""
        legs = [LegSpec(s, s, SHARE_RIGHT, SHARE_STRIKE, SHARE_EXPIRY, -q) for s, q in sorted(shares.items())]
        if self._desk.quotes_missing(f"{position.position_id}-shares", legs):
            return
        run_id = self._broker.run_id
        group_id = new_record_id(f"{position.position_id}-shares", self._state.now, run_id, self._state.taken_ids())
        group = new_group(
            group_id, position.strategy_id, GroupPurpose.SETTLEMENT, position.position_id, legs, self._state.now, run_id
        )
        durable = self._ledger.set_group(group)
        durable = self._ledger.flush_write_ahead() and durable
        if not durable:
            self._desk.abandon_unwritten("share sale", group_id)
            return
        self._log.info(f"engine: selling delivered shares of {position.position_id} with {group_id}: {shares}")
        self._desk.submit(group_id, as_combo=False)

    def expire_at_end_of_run(self, now: datetime) -> None:
        """The last day of a run: LEAN settles expiries on the next tradable date (DelistingEventProvider), so
        contracts that expired by now get no event inside the run. Book them as the exercise model will (out of
        the money at 0; in the money delivered at the strike or cash-settled at intrinsic of the last price),
        noted as an estimate, so the run's records and P&L end where the account will be."""
        spot = self._view_price()
        for _, position in sorted(self._state.positions.items()):
            if position.status is PositionStatus.CLOSED:
                continue
            for symbol, held in sorted(position_holdings(position, self._state.groups.values()).items()):
                parsed = parse_contract_key(symbol)
                if parsed is None or not _expired(parsed[1], now):
                    continue
                right, strike = parsed[2], parsed[3]
                in_the_money = spot is not None and intrinsic_value(right, strike, spot) >= 0.01
                message = f"expired by the end of the run (estimate at {spot})"
                event = self._settlement_event(symbol, held, in_the_money, now=now, message=message, spot=spot)
                kind = "assignment" if event.is_assignment else "exercise" if in_the_money else "expiry"
                self._settle_contract(event, kind, f"end-of-run/{position.position_id}/{symbol}")
        self._settle()

    def settle_missed_exercises(self) -> None:
        """At a restart, before reconcile: what the broker did while we were down comes without events. A contract
        a position holds that the broker no longer holds, while no working order of ours could explain it, was
        exercised, assigned or expired: in the money and physically settled if its delivery shows in the shares
        held (booked at the strike), else expired if its expiry has passed (at 0, or at intrinsic when cash-settled,
        from the last price). Anything else is left to reconcile."""
        try:
            holdings = dict(self._broker.holdings())
        except Exception as error:
            self._log.error(f"engine: holdings unavailable, missed exercises not checked: {error!r}")
            return
        self._settle_missed_on_entries(holdings)
        claimed = claims(self._state.positions, self._state.groups)
        working = {leg.symbol for g in self._state.groups.values() for leg in open_legs(g)}
        for _, position in sorted(self._state.positions.items()):
            if position.status is PositionStatus.CLOSED:
                continue
            for symbol, held in sorted(position_holdings(position, self._state.groups.values()).items()):
                parsed = parse_contract_key(symbol)
                if parsed is None or symbol in working or holdings.get(symbol, 0) or not claimed.get(symbol, 0):
                    continue
                underlying, expiry, right, strike = parsed
                delivery = delivered_shares(right, -held)
                unexplained = holdings.get(underlying, 0) - claimed.get(underlying, 0)
                delivered = not self._cash_settled(symbol) and unexplained * delivery > 0
                delivered = delivered and abs(unexplained) >= abs(delivery)
                if not (delivered or _expired(expiry, self._state.now)):
                    continue
                self._book_missed(position, symbol, held, delivered, strike)
                claimed = claims(self._state.positions, self._state.groups)

    def _settle_missed_on_entries(self, holdings: Dict[str, int]) -> None:
        """An entry still in flight at the crash (no position yet) whose short leg filled AND was assigned while the
        algorithm was down: the broker holds none of the leg but the shares its assignment delivered, which no
        record explains. Book both as they happened, before reconcile (which would otherwise adopt the shares
        as untracked and decide the leg was never filled): the leg's fill (at the quote mid when the view has
        one, else unpriced: the position is then noted "fill price unknown"), then a SETTLEMENT of the
        assignment on the entry's position id. Settling builds the position and flattens what it holds."""
        for group_id in sorted(self._state.groups):
            group = self._state.groups[group_id]
            if group.purpose not in OPENING_PURPOSES:
                continue
            if group.position_id in self._state.positions:
                continue
            for leg in group.legs:
                remaining = leg.quantity - leg.filled_quantity
                if remaining < 0 and self._assigned_while_down(leg.symbol, remaining, holdings):
                    self._book_fill_and_assignment(group.group_id, leg.symbol, remaining)

    def _assigned_while_down(self, symbol: str, remaining: int, holdings: Dict[str, int]) -> bool:
        parsed = parse_contract_key(symbol)
        if parsed is None or holdings.get(symbol, 0) or self._cash_settled(symbol):
            return False
        delivery = delivered_shares(parsed[2], -remaining)
        claimed = claims(self._state.positions, self._state.groups)
        unexplained = holdings.get(parsed[0], 0) - claimed.get(parsed[0], 0)
        return unexplained * delivery > 0 and abs(unexplained) >= abs(delivery)

    def _book_fill_and_assignment(self, group_id: str, symbol: str, remaining: int) -> None:
        parsed = parse_contract_key(symbol)
        if parsed is None:
            return
        underlying, _, right, strike = parsed
        group = self._state.groups[group_id]
        price = self._ledger.quote_mids({symbol}).get(symbol)
        self._ledger.set_group(apply_holdings_fill(group, symbol, remaining, self._state.now, price))
        self._ledger.audit(
            "missed-fill", f"{symbol} filled {remaining:+d} while down, then assigned (at {price})", f"group-{group_id}"
        )
        key = f"down/{self._ledger.run_id}/{group_id}/{symbol}"
        option = _closed_option_leg(symbol, -remaining, 0.0, key)
        shares = _share_leg(underlying, delivered_shares(right, -remaining), strike, f"{key}/delivery")
        message = "while the algorithm was down, on a fill no record held (learned from holdings)"
        self._save_settlement_of(group.position_id, group.strategy_id, (option, shares), "assignment", message)

    def _book_missed(self, position: PositionRecord, symbol: str, held: int, delivered: bool, strike: float) -> None:
        spot = self._view_price()
        parsed = parse_contract_key(symbol)
        if parsed is None:  # the caller parsed it already; a key that does not parse is never booked
            return
        in_the_money = delivered or (spot is not None and intrinsic_value(parsed[2], strike, spot) >= 0.01)
        message = "while the algorithm was down (learned from holdings)"
        event = self._settlement_event(symbol, held, in_the_money, now=self._state.now, message=message, spot=spot)
        kind = "assignment" if event.is_assignment else "exercise" if in_the_money else "expiry"
        self._settle_contract(event, kind, f"down/{self._ledger.run_id}/{position.position_id}/{symbol}")

    def _settlement_event(
        self, symbol: str, held: int, in_the_money: bool, *, now: datetime, message: str, spot: Optional[float]
    ) -> OrderEventData:
        """The exercise/assignment/expiry event LEAN would have sent for `held` contracts of `symbol`, built for a
        settlement learned without one (end of run, or while down): the whole holding leaves at 0; a short in the
        money is an assignment."""
        return OrderEventData(
            order_id=-1,
            event_id=0,
            symbol=symbol,
            status=EventStatus.FILLED,
            fill_quantity=-held,
            fill_price=0.0,
            tag="",
            utc_time=now,
            is_assignment=in_the_money and held < 0,
            message=message,
            exercise=True,
            in_the_money=in_the_money,
            cash_settled=self._cash_settled(symbol),
            underlying_price=spot,
        )

    def _cash_settled(self, symbol: str) -> bool:
        """Index options settle in cash (LEAN: IndexOption, SettlementType.Cash); equity options deliver."""
        return symbol.split("-", 1)[0] in CASH_SETTLED_UNDERLYINGS


# the underlyings whose options the template trades as index options (main.py _INDEX_OPTION_TARGETS)
CASH_SETTLED_UNDERLYINGS = frozenset({"SPX", "SPXW", "NDX", "NDXP", "RUT", "RUTW"})


def _expired(expiry: date, now: datetime) -> bool:
    return expiry < now.date() or (expiry == now.date() and now.time() >= REGULAR_CLOSE)


__all__ = ["CASH_SETTLED_UNDERLYINGS", "ExerciseBooking", "delivered_shares", "intrinsic_value"]
