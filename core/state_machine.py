"""The strategy life cycle as an explicit transition table, persisted before anyone can act on a new state.

`StrategyMachine.transition` builds the next `StrategyStateRecord`, hands it to `persist` and only then
makes it the machine's state and returns persist's answer. So whatever the engine does next (place an
order, write a group) happens after the state that explains it was given to the store; a False answer
means "not durable yet" and the engine must not place orders on it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from enum import Enum
from typing import Callable, Dict, FrozenSet, Mapping, Optional, Union

from core.records import StrategyState, StrategyStateRecord, TransitionEntry

S = StrategyState

_ORDINARY: Dict[StrategyState, FrozenSet[StrategyState]] = {
    S.WAITING: frozenset({S.ENTERING}),
    S.ENTERING: frozenset({S.ACTIVE, S.WAITING}),  # WAITING: the entry was refused or rolled back
    S.ACTIVE: frozenset({S.EXITING}),
    S.EXITING: frozenset({S.CLOSED, S.ACTIVE}),  # ACTIVE: the exit did not fill; the position is still held
    S.CLOSED: frozenset({S.WAITING}),
    S.ERROR: frozenset({S.RECOVERING, S.WAITING}),
    S.RECOVERING: frozenset({S.WAITING, S.ENTERING, S.ACTIVE, S.EXITING, S.CLOSED}),
}


def _with_escapes(
    table: Mapping[StrategyState, FrozenSet[StrategyState]],
) -> Dict[StrategyState, FrozenSet[StrategyState]]:
    # Any state may fail (ERROR) or be taken over by start-up recovery (RECOVERING); never to itself.
    return {state: frozenset((targets | {S.ERROR, S.RECOVERING}) - {state}) for state, targets in table.items()}


TRANSITIONS: Mapping[StrategyState, FrozenSet[StrategyState]] = _with_escapes(_ORDINARY)


def is_legal(from_state: StrategyState, to_state: StrategyState) -> bool:
    return to_state in TRANSITIONS[from_state]


class IllegalTransition(ValueError):
    def __init__(self, strategy_id: str, from_state: StrategyState, to_state: StrategyState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[from_state])) or "nothing"
        super().__init__(
            f"strategy {strategy_id!r}: illegal transition {from_state.value} -> {to_state.value} "
            f"(allowed from {from_state.value}: {allowed})"
        )
        self.strategy_id = strategy_id
        self.from_state = from_state
        self.to_state = to_state


class _Keep(Enum):
    KEEP = "keep"


_KEEP = _Keep.KEEP  # "leave this field as it is" (None means "clear it")

Persist = Callable[[StrategyStateRecord], bool]


class StrategyMachine:
    def __init__(self, record: StrategyStateRecord, persist: Persist, history_limit: int = 20) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be >= 1")
        self._record = record
        self._persist = persist
        self._history_limit = history_limit

    @classmethod
    def fresh(
        cls,
        strategy_id: str,
        now: datetime,
        params_hash: str,
        persist: Persist,
        history_limit: int = 20,
    ) -> StrategyMachine:
        """A new strategy in WAITING. Not saved until the first transition or an explicit save()."""
        record = StrategyStateRecord(
            strategy_id=strategy_id,
            state=S.WAITING,
            previous=None,
            changed_at=now,
            reason="new",
            params_hash=params_hash,
        )
        return cls(record, persist, history_limit)

    @property
    def record(self) -> StrategyStateRecord:
        return self._record

    @property
    def state(self) -> StrategyState:
        return self._record.state

    @property
    def strategy_id(self) -> str:
        return self._record.strategy_id

    def save(self) -> bool:
        return self._persist(self._record)

    def can_transition(self, to: StrategyState) -> bool:
        return is_legal(self._record.state, to)

    def transition(
        self,
        to: StrategyState,
        now: datetime,
        reason: str,
        *,
        position_id: Union[Optional[str], _Keep] = _KEEP,
        group_id: Union[Optional[str], _Keep] = _KEEP,
        last_entry_day: Union[Optional[date], _Keep] = _KEEP,
    ) -> bool:
        """Move to `to`, persist the new record, then return persist's bool (False = not durable yet).

        Illegal moves raise IllegalTransition and change nothing (no persist call)."""
        current = self._record
        if not is_legal(current.state, to):
            raise IllegalTransition(current.strategy_id, current.state, to)
        entry = TransitionEntry(from_state=current.state, to_state=to, at=now, reason=reason)
        history = (*current.history, entry)[-self._history_limit :]
        new = replace(
            current,
            state=to,
            previous=current.state,
            changed_at=now,
            reason=reason,
            history=history,
            position_id=current.position_id if isinstance(position_id, _Keep) else position_id,
            group_id=current.group_id if isinstance(group_id, _Keep) else group_id,
            last_entry_day=current.last_entry_day if isinstance(last_entry_day, _Keep) else last_entry_day,
        )
        # The new state becomes visible only after the store has it: a crash (or an exception) in persist
        # leaves the machine in the old state, which is also what a restart would load.
        durable = self._persist(new)
        self._record = new
        return durable
