"""Codec, envelope and key rules: typed JSON round trips, strict refusals, LEAN-safe namespaced keys."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import records
from core.records import (
    FORBIDDEN_FIELDS,
    SCHEMA_OF,
    ContractRecord,
    GroupPurpose,
    GroupStatus,
    LegRecord,
    LegStatus,
    OrderGroupRecord,
    PositionRecord,
    Right,
    StrategyState,
    StrategyStateRecord,
    TransitionEntry,
)
from persistence.codec import RecordError, canonical_json, from_body, to_body
from persistence.envelope import EnvelopeError, open_envelope, seal
from persistence.keys import (
    LEAN_KEY_PATTERN,
    KeyRuleError,
    Namespace,
    check_key,
    escape_segment,
    parse_record_key,
    unescape_segment,
)

SETTINGS = settings(derandomize=True, max_examples=60, deadline=None)


class Color(Enum):
    RED = "red"
    BLUE = 2


@dataclass(frozen=True)
class Inner:
    when: date
    amount: Decimal


@dataclass(frozen=True)
class Sample:
    at: datetime
    color: Color
    maybe: Optional[float]
    pair: Tuple[int, str]
    many: Tuple[Inner, ...]
    flag: bool = False


def _group() -> OrderGroupRecord:
    leg = LegRecord("SPY-20240119-P-402.5", "SPY", Right.PUT, 402.5, date(2024, 1, 19), -2, -1, 1.25)
    return OrderGroupRecord(
        "g1",
        "lt112",
        GroupPurpose.ENTRY,
        "p1",
        (leg, LegRecord("SPY-20240119-P-400", "SPY", Right.PUT, 400.0, date(2024, 1, 19), 1, status=LegStatus.FILLED)),
        GroupStatus.INCOMPLETE,
        datetime(2024, 1, 2, 15, 30),
        datetime(2024, 1, 2, 15, 31),
        "run-1",
    )


def test_nested_records_enums_dates_and_optionals_round_trip() -> None:
    group = _group()
    body = to_body(group)
    assert body["legs"][0]["expiry"] == "2024-01-19"
    assert body["legs"][0]["right"] == "P"
    assert body["parent_group_id"] is None
    assert from_body(OrderGroupRecord, json.loads(canonical_json(body))) == group


def test_decimal_datetime_with_offset_and_fixed_tuples_round_trip() -> None:
    sample = Sample(
        datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5))),
        Color.BLUE,
        None,
        (3, "x"),
        (Inner(date(2024, 1, 1), Decimal("1.10")),),
    )
    body = json.loads(canonical_json(to_body(sample)))
    assert body["many"][0]["amount"] == "1.10"  # exact text, not a float
    assert body["color"] == 2
    restored = from_body(Sample, body)
    assert restored == sample and restored.at.utcoffset() == timedelta(hours=-5)
    assert str(restored.many[0].amount) == "1.10"


SAMPLES = st.builds(
    Sample,
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(Color),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    st.tuples(st.integers(), st.text()),
    st.lists(
        st.builds(Inner, st.dates(), st.decimals(allow_nan=False, allow_infinity=False, places=4)), max_size=3
    ).map(tuple),
    st.booleans(),
)


@SETTINGS
@given(sample=SAMPLES)
def test_any_sample_round_trips_through_canonical_json(sample: Sample) -> None:
    text_form = canonical_json(to_body(sample))
    assert from_body(Sample, json.loads(text_form)) == sample
    assert canonical_json(to_body(from_body(Sample, json.loads(text_form)))) == text_form  # stable


@SETTINGS
@given(
    state=st.sampled_from(StrategyState),
    reason=st.text(max_size=30),
    day=st.one_of(st.none(), st.dates()),
    history=st.lists(
        st.builds(TransitionEntry, st.sampled_from(StrategyState), st.sampled_from(StrategyState), st.datetimes()),
        max_size=4,
    ),
)
def test_strategy_records_round_trip(
    state: StrategyState, reason: str, day: Optional[date], history: list[TransitionEntry]
) -> None:
    record = StrategyStateRecord("lt112", state, None, datetime(2024, 1, 2), reason, tuple(history), last_entry_day=day)
    assert from_body(StrategyStateRecord, json.loads(canonical_json(to_body(record)))) == record


def test_no_record_type_declares_a_derived_field() -> None:
    for cls in [*SCHEMA_OF, LegRecord, ContractRecord, TransitionEntry]:
        assert not {f.name for f in fields(cls)} & FORBIDDEN_FIELDS


@pytest.mark.parametrize("forbidden", sorted(FORBIDDEN_FIELDS))
def test_every_derived_field_in_a_stored_body_is_refused(forbidden: str) -> None:
    body = to_body(_group())
    body[forbidden] = 1.0
    with pytest.raises(RecordError, match="derived field"):
        from_body(OrderGroupRecord, body)
    nested = to_body(_group())
    nested["legs"][0][forbidden] = 1.0
    with pytest.raises(RecordError, match=r"legs\[0\].*derived field"):
        from_body(OrderGroupRecord, nested)


def test_a_record_type_that_declares_a_derived_field_is_refused_at_definition() -> None:
    @dataclass(frozen=True)
    class WithPrice:
        price: float

    original = dict(records.SCHEMA_OF)
    records.SCHEMA_OF[WithPrice] = "with_price"  # type: ignore[index]
    try:
        with pytest.raises(TypeError, match="derived fields"):
            records._check_no_forbidden_fields()
    finally:
        records.SCHEMA_OF.clear()
        records.SCHEMA_OF.update(original)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update(extra=1), "unknown field"),
        (lambda b: b.pop("run_id"), "missing field"),
        (lambda b: b.update(created_at="2024-01-02"), "expected datetime"),
        (lambda b: b.update(status="NOPE"), "is not a GroupStatus"),
        (lambda b: b["legs"][0].update(quantity=True), "expected int"),
        (lambda b: b["legs"][0].update(quantity=1.5), "expected int"),
        (lambda b: b["legs"][0].update(strike="402.5"), "expected a number"),
        (lambda b: b["legs"][0].update(expiry="2024-01-19T00:00:00"), "expected date"),
        (lambda b: b.update(legs={}), "expected a list"),
    ],
)
def test_wrong_shapes_are_refused_with_the_field_path(change: object, message: str) -> None:
    body = to_body(_group())
    change(body)  # type: ignore[operator]
    with pytest.raises(RecordError, match=message):
        from_body(OrderGroupRecord, body)


def test_encoding_refuses_values_json_cannot_hold_or_types_that_do_not_match() -> None:
    position = PositionRecord(
        "p1", "lt112", "g1", datetime(2024, 1, 2), float("nan"), (), date(2024, 2, 1), (), None, 1.0, 1.0, "h"
    )
    with pytest.raises(RecordError, match="finite float"):
        to_body(position)
    with pytest.raises(RecordError, match="expected date"):
        to_body(Inner(datetime(2024, 1, 1), Decimal(1)))  # a datetime is not a date
    with pytest.raises(RecordError, match="expected tuple"):
        to_body(Sample(datetime(2024, 1, 1), Color.RED, None, (1, "a"), [Inner(date(2024, 1, 1), Decimal(1))]))  # type: ignore[arg-type]


def test_envelope_seals_and_detects_damage() -> None:
    body_text = canonical_json(to_body(_group()))
    text = seal("order_group", 1, 7, "2024-01-02T15:30:00", body_text)
    assert json.loads(text)["seq"] == 7
    assert canonical_json(json.loads(text)) == text  # the sealed text is canonical itself
    envelope = open_envelope(text)
    assert (envelope.schema, envelope.version, envelope.seq) == ("order_group", 1, 7)
    respaced = json.dumps(json.loads(text), indent=2)
    assert open_envelope(respaced).seq == 7  # same JSON, other spacing: still valid
    with pytest.raises(EnvelopeError, match="bad checksum"):
        open_envelope(text.replace('"run-1"', '"run-2"'))
    with pytest.raises(EnvelopeError, match="bad checksum"):
        open_envelope(text.replace('"seq":7', '"seq":8'))
    with pytest.raises(EnvelopeError, match="not JSON"):
        open_envelope(text[: len(text) // 2])
    with pytest.raises(EnvelopeError, match="empty"):
        open_envelope("")
    with pytest.raises(EnvelopeError, match="not an envelope"):
        open_envelope('{"a":1}')


# -- keys ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a:b", "a.b.c", "a/b.c/d.json", "/abs", ".dot", "x\n", "", "a+b", "caf\u00e9"])
def test_check_key_refuses_what_lean_refuses_or_would_rewrite(key: str) -> None:
    with pytest.raises(KeyRuleError):
        check_key(key)


def test_namespaces_separate_live_backtests_and_runs() -> None:
    live = Namespace.for_run("-123456789", True, "L-42", "")
    run_a = Namespace.for_run("-123456789", False, "1111", "")
    run_b = Namespace.for_run("-123456789", False, "2222", "")
    resumed = Namespace.for_run("-123456789", False, "2222", "1111")
    assert live.root == "crashsafe/-123456789/live"
    assert run_a.root == "crashsafe/-123456789/backtest/1111"
    assert resumed == run_a  # resume-run continues that run's state
    assert Namespace.for_run("-123456789", True, "L-43", "1111") == live  # live never resumes a backtest
    key = run_a.record_key("group-g1", "a")
    assert run_a.owns(key) and not run_b.owns(key) and not live.owns(key)
    assert not Namespace.for_run("-123456789", False, "11", "").owns(key)  # no prefix confusion 11 vs 1111
    assert Namespace.for_run(7, True, "x", "", prefix="team/state").root == "team/state/7/live"
    with pytest.raises(KeyRuleError):
        Namespace.for_run(7, True, "x", "", prefix="bad.prefix")
    with pytest.raises(ValueError):
        Namespace.for_run(7, False, "", "")


@SETTINGS
@given(
    relative=st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda name, slot, tail: f"records/{name}-{slot}{tail}",
            st.text("ab-_=/.Z9", max_size=12),
            st.sampled_from(["a", "b", "c", "d", "e", "-", ""]),
            st.sampled_from([".json", ".json ", "", ".jso", "/x.json"]),
        ),
    )
)
def test_the_plain_record_key_match_agrees_with_parse_record_key(relative: str) -> None:
    """Namespace.plain_record_key (the loader's one-match read of the usual key) names exactly the record that
    parse_record_key names, and matches no key it refuses; a key it does not match is left to parse_record_key."""
    namespace = Namespace.for_run(7, True, "x", "")
    match = namespace.plain_record_key()(f"{namespace.root}/{relative}")
    if match is not None:
        assert parse_record_key(relative) == (match[1], relative[-len(".json") - 1])


@SETTINGS
@given(name=st.text(max_size=40), run=st.text(min_size=1, max_size=20), project=st.integers())
def test_every_built_key_obeys_leans_regex_and_parses_back(name: str, run: str, project: int) -> None:
    namespace = Namespace.for_run(project, False, run, "")
    key = namespace.record_key(name, "b")
    assert LEAN_KEY_PATTERN.fullmatch(key) and ":" not in key and key.count(".") == 1
    assert parse_record_key(namespace.relative(key) or "") == (name, "b")
    assert unescape_segment(escape_segment(name)) == name
    quarantine = namespace.quarantine_key(key, "0123abcd")
    assert LEAN_KEY_PATTERN.fullmatch(quarantine) and namespace.owns(quarantine)
