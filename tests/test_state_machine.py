from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.records import StrategyState, StrategyStateRecord
from core.state_machine import TRANSITIONS, IllegalTransition, StrategyMachine, is_legal

S = StrategyState
T0 = datetime(2024, 1, 3, 10, 0)
ALL_STATES = list(StrategyState)
LEGAL_PAIRS = [(a, b) for a in ALL_STATES for b in TRANSITIONS[a]]
ILLEGAL_PAIRS = [(a, b) for a in ALL_STATES for b in ALL_STATES if b not in TRANSITIONS[a]]


class Spy:
    """A persist callback that records what it was given and what the machine showed at that moment."""

    def __init__(self, answer: bool = True) -> None:
        self.saved: List[StrategyStateRecord] = []
        self.state_seen_during_persist: List[StrategyState] = []
        self.machine: StrategyMachine | None = None
        self.answer = answer

    def __call__(self, record: StrategyStateRecord) -> bool:
        self.saved.append(record)
        if self.machine is not None:
            self.state_seen_during_persist.append(self.machine.state)
        return self.answer


def machine_in(state: StrategyState, spy: Spy, history_limit: int = 20) -> StrategyMachine:
    record = StrategyStateRecord("lt112", state, None, T0, "test", params_hash="abc")
    machine = StrategyMachine(record, spy, history_limit)
    spy.machine = machine
    return machine


def test_table_is_the_contract() -> None:
    assert TRANSITIONS[S.WAITING] == {S.ENTERING, S.ERROR, S.RECOVERING}
    assert TRANSITIONS[S.ENTERING] == {S.ACTIVE, S.WAITING, S.ERROR, S.RECOVERING}
    assert TRANSITIONS[S.ACTIVE] == {S.EXITING, S.ERROR, S.RECOVERING}
    assert TRANSITIONS[S.EXITING] == {S.CLOSED, S.ACTIVE, S.ERROR, S.RECOVERING}
    assert TRANSITIONS[S.CLOSED] == {S.WAITING, S.ERROR, S.RECOVERING}
    assert TRANSITIONS[S.ERROR] == {S.RECOVERING, S.WAITING}
    assert TRANSITIONS[S.RECOVERING] == {S.WAITING, S.ENTERING, S.ACTIVE, S.EXITING, S.CLOSED, S.ERROR}
    assert set(TRANSITIONS) == set(StrategyState)
    assert all(state not in targets for state, targets in TRANSITIONS.items())


def test_fresh_is_waiting_and_not_saved() -> None:
    spy = Spy()
    machine = StrategyMachine.fresh("zero_dte", T0, "h1", spy)
    assert machine.state == S.WAITING
    assert machine.record.params_hash == "h1"
    assert spy.saved == []
    assert machine.save() is True
    assert spy.saved == [machine.record]


@pytest.mark.parametrize(("from_state", "to_state"), LEGAL_PAIRS)
def test_every_legal_transition_is_persisted_before_the_machine_shows_it(
    from_state: StrategyState, to_state: StrategyState
) -> None:
    spy = Spy()
    machine = machine_in(from_state, spy)
    assert machine.transition(to_state, T0 + timedelta(minutes=1), "go") is True
    assert len(spy.saved) == 1
    saved = spy.saved[0]
    # while persist ran, the machine still showed the old state: nothing could act on the new one yet
    assert spy.state_seen_during_persist == [from_state]
    assert saved.state == to_state and saved.previous == from_state
    assert machine.record == saved
    assert saved.history[-1].from_state == from_state and saved.history[-1].to_state == to_state


@settings(max_examples=60, derandomize=True)
@given(st.sampled_from(ILLEGAL_PAIRS))
def test_every_illegal_pair_is_refused_and_changes_nothing(pair: tuple[StrategyState, StrategyState]) -> None:
    from_state, to_state = pair
    spy = Spy()
    machine = machine_in(from_state, spy)
    before = machine.record
    with pytest.raises(IllegalTransition) as raised:
        machine.transition(to_state, T0, "nope")
    assert machine.record is before
    assert spy.saved == []
    message = str(raised.value)
    assert from_state.value in message and to_state.value in message and "lt112" in message


def test_illegal_pairs_cover_everything_outside_the_table() -> None:
    assert len(LEGAL_PAIRS) + len(ILLEGAL_PAIRS) == len(ALL_STATES) ** 2
    assert all(not is_legal(state, state) for state in ALL_STATES)


def test_false_persist_is_returned_and_the_state_still_moves() -> None:
    spy = Spy(answer=False)
    machine = machine_in(S.WAITING, spy)
    assert machine.transition(S.ENTERING, T0, "entry") is False
    assert machine.state == S.ENTERING  # the record stays dirty in the store; the engine must not act on it


def test_persist_exception_leaves_the_old_state() -> None:
    def broken(_: StrategyStateRecord) -> bool:
        raise RuntimeError("disk gone")

    machine = StrategyMachine(StrategyStateRecord("lt112", S.WAITING, None, T0, "x"), broken)
    with pytest.raises(RuntimeError):
        machine.transition(S.ENTERING, T0, "entry")
    assert machine.state == S.WAITING


def test_keep_sentinel_and_explicit_none() -> None:
    spy = Spy()
    machine = machine_in(S.WAITING, spy)
    machine.transition(S.ENTERING, T0, "entry", position_id="p1", group_id="g1", last_entry_day=date(2024, 1, 3))
    machine.transition(S.ACTIVE, T0, "filled", group_id=None)
    record = machine.record
    assert (record.position_id, record.group_id, record.last_entry_day) == ("p1", None, date(2024, 1, 3))


@settings(max_examples=40, derandomize=True)
@given(st.lists(st.sampled_from(ALL_STATES), min_size=1, max_size=60), st.integers(min_value=1, max_value=8))
def test_history_is_bounded_newest_last(targets: List[StrategyState], limit: int) -> None:
    spy = Spy()
    machine = machine_in(S.WAITING, spy, history_limit=limit)
    moves = []
    at = T0
    for target in targets:
        if machine.can_transition(target):
            at += timedelta(minutes=1)
            before = machine.state
            machine.transition(target, at, f"to {target}")
            moves.append((before, target, at))
    history = machine.record.history
    assert len(history) == min(limit, len(moves))
    assert [(h.from_state, h.to_state, h.at) for h in history] == moves[len(moves) - len(history) :]
    assert len(spy.saved) == len(moves)
