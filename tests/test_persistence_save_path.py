"""The save path's text writer (persistence/record_text.py, issue 12): the same text as the reference encoder.

record_text.text_of writes a record's canonical JSON directly. It may refuse a value the reference path
(codec.to_body + json) would write (record_json then takes the reference path), but it never writes what the
reference refuses, and whatever it writes is byte for byte the reference text. Checked over valid records and
records with one field (nested ones included) replaced by a value of another type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, List

from hypothesis import given, settings
from hypothesis import strategies as st

from core.records import GroupStatus, LegStatus, Right, StrategyState
from persistence.codec import _SORTED_BODY_ENCODER, RecordError, record_json, to_body
from persistence.record_text import text_of
from tests.test_persistence_load_path import SAMPLES
from tests.test_persistence_store import T0

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from(["P", "FILLED", "\u00e9\u2028", 'a"b\\c\n', "SPY-20240119-P-400"]),
    st.dates(),
    st.datetimes(),
    st.just(datetime(2024, 1, 2, 15, tzinfo=UTC)),
    st.sampled_from([Decimal("1.10"), Decimal("NaN"), Right.PUT, LegStatus.FILLED, GroupStatus.PENDING]),
    st.sampled_from([StrategyState.ACTIVE, date(2024, 1, 19), T0, 400, 400.0, -0.0, 1e300, 5e-324]),
    st.lists(st.one_of(st.text(max_size=3), st.integers(-5, 5), st.floats(-5, 5)), max_size=3).map(tuple),
)


def _reference(record: Any) -> str:
    try:
        return "ok " + _SORTED_BODY_ENCODER.encode(to_body(record))
    except RecordError as error:
        return "refused " + str(error)


def _mutated(record: Any, data: st.DataObject) -> Any:
    """`record` with one field, possibly inside a nested record or tuple of records, replaced."""
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(record)]))
    current = getattr(record, field)
    items: List[Any] = list(current) if isinstance(current, tuple) else []
    if items and dataclasses.is_dataclass(items[0]) and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(items) - 1))
        items[index] = _mutated(items[index], data)
        return replace(record, **{field: tuple(items)})
    return replace(record, **{field: data.draw(VALUES)})


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_the_text_writer_writes_the_reference_text_and_refuses_what_the_reference_refuses(
    data: st.DataObject,
) -> None:
    record = data.draw(st.sampled_from(SAMPLES))
    if data.draw(st.booleans()):
        record = _mutated(record, data)
    reference = _reference(record)
    try:
        fast = "ok " + text_of(record)
    except Exception:
        fast = "refused"
    assert fast in (reference, "refused"), (fast, reference)
    try:
        saved = "ok " + record_json(record)
    except RecordError as error:
        saved = "refused " + str(error)
    assert saved == reference  # what a save stores: exactly the reference outcome


def test_valid_records_are_written_by_the_text_writer_itself() -> None:
    for record in SAMPLES:
        assert "ok " + text_of(record) == _reference(record)


def test_items_that_only_compare_equal_are_refused_by_type() -> None:
    leg = SAMPLES[0].legs[0]
    changes = (("right", "P"), ("quantity", True), ("quantity", -2.0), ("strike", True), ("symbol", Right.PUT))
    for field, value in changes:
        record = replace(SAMPLES[0], legs=(replace(leg, **{field: value}),))
        assert _reference(record).startswith("refused"), field
        try:
            text_of(record)
        except Exception:
            continue
        raise AssertionError(f"{field}={value!r} was written")
