"""Record dataclasses <-> JSON-compatible bodies, driven by the dataclass field types. No pickle, no eval.

Supported field types: str, int, float, bool, Decimal, date, datetime, Enum subclasses, Optional[X],
Tuple[X, ...], fixed Tuple[A, B, ...] and nested dataclasses. How they look in JSON:

    datetime -> ISO text with its offset if it has one ("2024-01-19T15:45:00"), date -> "2024-01-19",
    Decimal -> its exact text ("1.10"), enum -> its value, tuple -> list, dataclass -> object.

Decoding is strict because a body that does not fit the type exactly is not ours (or is damaged): an unknown
field, a derived field (records.FORBIDDEN_FIELDS), a missing required field or a value of the wrong type
raises RecordError naming the field path (built on the error path only, so saving stays cheap).
bool is never accepted as a number, a datetime never as a date,
and NaN/infinity are refused (they are not JSON). An encoder/decoder is built once per type and cached,
so a save costs one pass over the values.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple, Type, TypeVar, cast

from core.records import FORBIDDEN_FIELDS
from persistence.record_text import text_of

T = TypeVar("T")
Encoder = Callable[[Any], Any]
Decoder = Callable[[Any], Any]


class RecordError(ValueError):
    """A record or stored body that does not match its type."""


# built once: json.dumps with any option builds a new encoder on every call
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
# for bodies built by to_body, whose objects already list their keys sorted (see _dataclass_encoder)
_SORTED_BODY_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def canonical_json(value: Any) -> str:
    """The one text form used for storing and for checksums: sorted keys, no spaces, ASCII, no NaN."""
    try:
        return _CANONICAL_ENCODER.encode(value)
    except (TypeError, ValueError) as error:
        raise RecordError(f"not JSON-compatible: {error}") from error


def record_json(record: Any) -> str:
    """canonical_json(to_body(record)): written directly by record_text.text_of; anything that path refuses goes
    through to_body (without sorting: every object in a body is built in sorted key order), which refuses it
    with the failing field named, or writes it."""
    try:
        return text_of(record)
    except Exception:  # the reference path below decides, and names what is wrong
        pass
    body = to_body(record)
    try:
        return _SORTED_BODY_ENCODER.encode(body)
    except (TypeError, ValueError) as error:
        raise RecordError(f"not JSON-compatible: {error}") from error


def to_body(record: Any) -> Dict[str, Any]:
    """The JSON-compatible body of a record dataclass instance."""
    if not is_dataclass(record) or isinstance(record, type):
        raise RecordError(f"not a record: {type(record).__name__}")
    try:
        body: Dict[str, Any] = _encoder(type(record))(record)
    except RecordError as error:
        raise RecordError(f"{type(record).__name__}{error}") from None
    return body


def from_body(cls: Type[T], body: Any) -> T:
    """Build a `cls` from a stored body; RecordError when the body does not fit `cls` exactly."""
    decoder: Decoder = _decoder(cast(Hashable, cls))
    try:
        record: T = decoder(body)
    except RecordError as error:
        raise RecordError(f"{cls.__name__}{error}") from None
    return record


# -- encoders -------------------------------------------------------------------------------------------------


@cache
def _encoder(tp: Any) -> Encoder:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _optional_encoder(tp)
    if origin is tuple:
        return _tuple_encoder(tp)
    if isinstance(tp, type):
        if is_dataclass(tp):
            return _dataclass_encoder(tp)
        if issubclass(tp, Enum):
            return _enum_encoder(tp)
        simple = _SIMPLE_ENCODERS.get(tp)
        if simple is not None:
            return simple
    raise TypeError(f"the codec does not support field type {tp!r}")


def _encode_str(value: Any) -> Any:
    if type(value) is not str:
        raise RecordError(f": expected str, got {type(value).__name__}")
    return value


def _encode_int(value: Any) -> Any:
    if type(value) is not int:
        raise RecordError(f": expected int, got {type(value).__name__}")
    return value


def _encode_float(value: Any) -> Any:
    if type(value) not in (float, int) or not math.isfinite(value):
        raise RecordError(f": expected a finite float, got {value!r}")
    return float(value)


def _encode_bool(value: Any) -> Any:
    if type(value) is not bool:
        raise RecordError(f": expected bool, got {type(value).__name__}")
    return value


def _encode_decimal(value: Any) -> Any:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise RecordError(f": expected a finite Decimal, got {value!r}")
    return str(value)


def _encode_date(value: Any) -> Any:
    if type(value) is not date:
        raise RecordError(f": expected date, got {type(value).__name__}")
    return value.isoformat()


def _encode_datetime(value: Any) -> Any:
    if not isinstance(value, datetime):
        raise RecordError(f": expected datetime, got {type(value).__name__}")
    return value.isoformat()


_SIMPLE_ENCODERS: Dict[Any, Encoder] = {
    str: _encode_str,
    int: _encode_int,
    float: _encode_float,
    bool: _encode_bool,
    Decimal: _encode_decimal,
    date: _encode_date,
    datetime: _encode_datetime,
}


def _optional_encoder(tp: Any) -> Encoder:
    encode_inner = _encoder(_optional_inner(tp))

    def encode(value: Any) -> Any:
        return None if value is None else encode_inner(value)

    return encode


def _at_index(convert: Callable[[Any], Any], items: Any, error: RecordError) -> RecordError:
    """The same error with the index of the failing item in front (only computed on the error path)."""
    for index, item in enumerate(items):
        try:
            convert(item)
        except RecordError as item_error:
            return RecordError(f"[{index}]{item_error}")
    return error


def _tuple_encoder(tp: Any) -> Encoder:
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        encode_item = _encoder(args[0])
        item_type = args[0]
        frozen = getattr(getattr(item_type, "__dataclass_params__", None), "frozen", False)
        if isinstance(item_type, type) and is_dataclass(item_type) and frozen:
            encode_item = _memoized(encode_item)

        def encode_many(value: Any) -> Any:
            if type(value) is not tuple:
                raise RecordError(f": expected tuple, got {type(value).__name__}")
            try:
                return [encode_item(item) for item in value]
            except RecordError as error:
                raise _at_index(encode_item, value, error) from None

        return encode_many
    item_encoders = [_encoder(arg) for arg in args]

    def encode_fixed(value: Any) -> Any:
        if type(value) is not tuple or len(value) != len(item_encoders):
            raise RecordError(f": expected a tuple of {len(item_encoders)}, got {value!r}")
        return [enc(item) for enc, item in zip(item_encoders, value, strict=True)]

    return encode_fixed


_MEMO_LIMIT = 4096


def _memoized(encode: Encoder) -> Encoder:
    """Remember the bodies of frozen items (history entries, legs, audit entries) by identity: a record saved on
    every transition carries the same entry objects in its bounded history each time (new records are built
    from the old tuple), so looking an entry up by id costs far less than encoding it again. Identity, not
    equality, so a value that merely compares equal (400 == 400.0) is still encoded and validated itself.
    The memo keeps each value alive, so its id cannot be reused while cached; it is bounded (cleared when
    full). Cached bodies are shared, which is safe because bodies are only read (json.dumps, checksums)."""
    memo: Dict[int, Tuple[Any, Any]] = {}

    def encode_cached(value: Any) -> Any:
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        body = encode(value)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[id(value)] = (value, body)
        return body

    return encode_cached


def _enum_encoder(enum_type: Type[Enum]) -> Encoder:
    def encode(value: Any) -> Any:
        if not isinstance(value, enum_type):
            raise RecordError(f": expected {enum_type.__name__}, got {value!r}")
        return value._value_  # the member's stored value; `.value` goes through a slow descriptor

    return encode


def _dataclass_encoder(cls: type) -> Encoder:
    hints = typing.get_type_hints(cls)
    # sorted by name: the body's keys come out in canonical order, so it is encoded without a sort (record_json)
    plan = sorted((field.name, _encoder(hints[field.name])) for field in fields(cls))

    def encode(value: Any) -> Any:
        if type(value) is not cls:
            raise RecordError(f": expected {cls.__name__}, got {type(value).__name__}")
        attributes = value.__dict__
        try:
            return {name: enc(attributes[name]) for name, enc in plan}
        except RecordError as error:
            failing = next(n for n, enc in plan if _fails(enc, attributes[n]))
            raise RecordError(f".{failing}{error}") from None

    return encode


def _fails(convert: Callable[[Any], Any], value: Any) -> bool:
    try:
        convert(value)
    except RecordError:
        return True
    return False


# -- decoders -------------------------------------------------------------------------------------------------


@cache
def _decoder(tp: Any) -> Decoder:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _optional_decoder(tp)
    if origin is tuple:
        return _tuple_decoder(tp)
    if isinstance(tp, type):
        if is_dataclass(tp):
            return _dataclass_decoder(tp)
        if issubclass(tp, Enum):
            return _enum_decoder(tp)
        simple = _SIMPLE_DECODERS.get(tp)
        if simple is not None:
            return simple
    raise TypeError(f"the codec does not support field type {tp!r}")


def _decode_str(raw: Any) -> Any:
    if type(raw) is not str:
        raise RecordError(f": expected text, got {raw!r}")
    return raw


def _decode_float(raw: Any) -> Any:
    if type(raw) not in (float, int) or not math.isfinite(raw):
        raise RecordError(f": expected a number, got {raw!r}")
    return float(raw)


def _decode_decimal(raw: Any) -> Any:
    try:
        value = Decimal(raw) if type(raw) is str else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise RecordError(f": expected decimal text, got {raw!r}")
    return value


def _decode_date(raw: Any) -> Any:
    try:
        return date.fromisoformat(raw) if type(raw) is str and len(raw) == 10 else _bad("date", raw)
    except ValueError:
        return _bad("date", raw)


def _decode_datetime(raw: Any) -> Any:
    try:
        return datetime.fromisoformat(raw) if type(raw) is str and len(raw) > 10 else _bad("datetime", raw)
    except ValueError:
        return _bad("datetime", raw)


def _bad(expected: str, raw: Any) -> Any:
    raise RecordError(f": expected {expected}, got {raw!r}")


_SIMPLE_DECODERS: Dict[Any, Decoder] = {
    str: _decode_str,
    int: _encode_int,  # JSON ints decode to int exactly; the same check applies
    float: _decode_float,
    bool: _encode_bool,
    Decimal: _decode_decimal,
    date: _decode_date,
    datetime: _decode_datetime,
}


def _optional_inner(tp: Any) -> Any:
    args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if len(args) != 1 or len(typing.get_args(tp)) != 2:
        raise TypeError(f"only Optional[X] unions are supported, not {tp!r}")
    return args[0]


def _optional_decoder(tp: Any) -> Decoder:
    decode_inner = _decoder(_optional_inner(tp))

    def decode(raw: Any) -> Any:
        return None if raw is None else decode_inner(raw)

    return decode


def _tuple_decoder(tp: Any) -> Decoder:
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        decode_item = _decoder(args[0])
        exact = _EXACT_TYPES.get(args[0])
        if exact is not None:  # str, int or bool items are used as they are once their type is checked
            return _exact_tuple_decoder(exact, decode_item)

        def decode_many(raw: Any) -> Any:
            if type(raw) is not list:
                raise RecordError(f": expected a list, got {type(raw).__name__}")
            try:
                return tuple(map(decode_item, raw))
            except RecordError as error:
                raise _at_index(decode_item, raw, error) from None

        return decode_many
    item_decoders = [_decoder(arg) for arg in args]

    def decode_fixed(raw: Any) -> Any:
        if type(raw) is not list or len(raw) != len(item_decoders):
            raise RecordError(f": expected a list of {len(item_decoders)}, got {raw!r}")
        return tuple([dec(item) for dec, item in zip(item_decoders, raw, strict=True)])

    return decode_fixed


def _enum_decoder(enum_type: Type[Enum]) -> Decoder:
    # a dict lookup by the stored value, its exact type checked first, so 1 never stands for an enum's 1.0 (or
    # True for 1): what enum_type(raw) accepts minus the loose equalities, at a fraction of the cost
    members: Dict[Any, Enum] = {member._value_: member for member in enum_type}
    value_types = frozenset(type(value) for value in members)

    def decode(raw: Any) -> Any:
        member = members.get(raw) if type(raw) in value_types else None
        if member is None:
            raise RecordError(f": {raw!r} is not a {enum_type.__name__}")
        return member

    return decode


def _exact_tuple_decoder(exact: type, decode_item: Decoder) -> Decoder:
    only_exact = {exact}

    def decode_exact(raw: Any) -> Any:
        if type(raw) is list and (not raw or set(map(type, raw)) == only_exact):
            return tuple(raw)
        # the reference path: it raises with the failing index (or a wrong container type)
        if type(raw) is not list:
            raise RecordError(f": expected a list, got {type(raw).__name__}")
        return tuple([decode_item(item) for item in raw])

    return decode_exact


# field types whose JSON value is the Python value itself once its exact type is checked (no conversion):
# type(True) is bool, so a bool never passes for an int and the reverse
_EXACT_TYPES: Dict[Any, type] = {str: str, int: int, bool: bool}


class _ParsedTimes(Dict[str, Any]):
    """ISO text -> date or datetime, parsed once by the reference decoder (which raises on what it refuses) and
    then looked up: a start-up sees the same expiry and entry times in many records. Values are immutable, so
    records may share them. Bounded: cleared when full."""

    def __init__(self, parse: Decoder) -> None:
        super().__init__()
        self._parse = parse

    def __missing__(self, raw: str) -> Any:
        value = self._parse(raw)
        if len(self) >= _MEMO_LIMIT:
            self.clear()
        self[raw] = value
        return value


_PARSED_TIMES = {date: _ParsedTimes(_decode_date), datetime: _ParsedTimes(_decode_datetime)}


class _Mismatch(Exception):
    """Raised inside a generated decoder when a value does not fit: the reference decoder then decides."""


class _DecoderSource:
    """The text and the names of a generated decoder function (see `_fast_decoder`). Every line is built here
    from the record's own field names and types (dataclass fields, checked to be identifiers) and the index of
    the field; values from stored data never become code: they are only looked up, compared and converted by
    the generated function at run time."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.names: Dict[str, Any] = {"Mismatch": _Mismatch, "isfinite": math.isfinite}

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def name(self, prefix: str, index: int, value: Any) -> str:
        key = f"{prefix}_{index}"
        self.names[key] = value
        return key

    def field(self, indent: int, index: int, tp: Any) -> bool:
        """Lines that check v<index> for a field of type `tp` (and convert it in place); False: unsupported."""
        v = f"v{index}"
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            self.add(indent, f"if {v} is not None:")
            return self.field(indent + 1, index, _optional_inner(tp))
        if tp in _EXACT_TYPES:
            self.add(indent, f"if type({v}) is not {tp.__name__}: raise Mismatch")
        elif tp is float:  # an int stands for a float (JSON writes 2.0 as 2 in other tools); never NaN/infinity
            self.add(indent, f"if type({v}) is int: {v} = float({v})")
            self.add(indent, f"elif type({v}) is not float or not isfinite({v}): raise Mismatch")
        elif isinstance(tp, type) and issubclass(tp, Enum):
            members = {member._value_: member for member in tp}
            kinds = frozenset(type(value) for value in members)
            self.add(indent, f"if type({v}) not in {self.name('kinds', index, kinds)}: raise Mismatch")
            self.add(indent, f"{v} = {self.name('members', index, members)}[{v}]")  # KeyError: not a member
        elif tp in (date, datetime):
            self.add(indent, f"if type({v}) is not str: raise Mismatch")
            self.add(indent, f"{v} = {self.name('parsed', index, _PARSED_TIMES[tp])}[{v}]")  # raises if refused
        elif tp is Decimal:
            self.add(indent, f"{v} = {self.name('decimal', index, _decode_decimal)}({v})")
        elif (items := _exact_items(tp)) is not None:  # ids and keys: short lists, checked item by item
            self.add(indent, f"if type({v}) is not list: raise Mismatch")
            self.add(indent, f"for item in {v}:")
            self.add(indent + 1, f"if type(item) is not {items.__name__}: raise Mismatch")
            self.add(indent, f"{v} = tuple({v})")
        elif _many_items(tp) is not None:  # Tuple[X, ...] of records: the items' own decoders, no call between
            self.add(indent, f"if type({v}) is not list: raise Mismatch")
            self.add(indent, f"{v} = tuple(map({self.name('item', index, _decoder(_many_items(tp)))}, {v}))")
        elif typing.get_origin(tp) is tuple or is_dataclass(tp):
            self.add(indent, f"{v} = {self.name('decode', index, _decoder(tp))}({v})")  # raises on a bad value
        else:
            return False
        return True


def _exact_items(tp: Any) -> Optional[type]:
    """X of a Tuple[X, ...] whose items are kept as they are (str, int, bool), else None."""
    args = typing.get_args(tp) if typing.get_origin(tp) is tuple else ()
    return _EXACT_TYPES.get(args[0]) if len(args) == 2 and args[1] is Ellipsis else None


def _many_items(tp: Any) -> Any:
    """X of a Tuple[X, ...], else None."""
    args = typing.get_args(tp) if typing.get_origin(tp) is tuple else ()
    return args[0] if len(args) == 2 and args[1] is Ellipsis else None


def _fast_decoder(cls: type, names: Sequence[str], hints: Dict[str, Any], reference: Decoder) -> Optional[Decoder]:
    """The decoder of `cls`: one function generated for the record type (as `dataclasses` generates __init__),
    straight-line code that reads each field, checks its JSON type and converts it (dates, enums, tuples,
    nested records, ints standing for floats); a body that is not exactly the record's fields, or any value
    that does not fit, goes to `reference`, which refuses it naming the failing field (or accepts it: the
    reference decides). So the fast path never accepts what the reference refuses
    (tests/test_persistence_load_path.py compares the two). None when a field type is not covered here (the
    reference decoder is then used alone). `decoder_source` shows the generated text."""
    source = _decoder_source(cls, names, hints)
    if source is None:
        return None
    namespace = dict(source.names, reference=reference, cls=cls, new=object.__new__, set_dict=object.__setattr__)
    exec("\n".join(source.lines), namespace)  # the text is built from the record type only (see _DecoderSource)
    decode: Decoder = namespace["decode"]
    return decode


def _decoder_source(cls: type, names: Sequence[str], hints: Dict[str, Any]) -> Optional[_DecoderSource]:
    if not all(name.isidentifier() for name in names):
        return None
    source = _DecoderSource()
    source.add(0, "def decode(raw):")
    source.add(1, f"if type(raw) is not dict or len(raw) != {len(names)}:")
    source.add(2, "return reference(raw)")
    source.add(1, "try:")
    for index, name in enumerate(names):
        source.add(2, f"v{index} = raw[{name!r}]")  # KeyError: a field missing (and an unknown one present)
        if not source.field(2, index, hints[name]):
            return None
    source.add(1, "except Exception:  # anything that does not fit: the reference decoder decides and names it")
    source.add(2, "return reference(raw)")
    source.add(1, "record = new(cls)")
    fields_dict = ", ".join(f"{name!r}: v{index}" for index, name in enumerate(names))
    source.add(1, f"set_dict(record, '__dict__', {{{fields_dict}}})")
    source.add(1, "return record")
    return source


def decoder_source(cls: type) -> str:
    """The text of the generated decoder of record type `cls` (for reading and tests)."""
    hints = typing.get_type_hints(cls)
    source = _decoder_source(cls, [field.name for field in fields(cls)], hints)
    return "" if source is None else "\n".join(source.lines)


def _dataclass_decoder(cls: type) -> Decoder:
    hints = typing.get_type_hints(cls)
    record_fields = fields(cls)
    plan = [(field.name, _decoder(hints[field.name])) for field in record_fields]
    required = [f.name for f in record_fields if f.default is MISSING and f.default_factory is MISSING]
    defaults = {f.name: f.default for f in record_fields if f.default is not MISSING}
    known = frozenset(name for name, _ in plan)
    # records are plain frozen dataclasses (no __post_init__, no factories): fill the instance directly, which
    # is several times faster than the frozen __init__ and matters when thousands of groups load at start-up
    direct = all(f.default_factory is MISSING for f in record_fields) and not hasattr(cls, "__post_init__")

    def decode(raw: Any) -> Any:
        if type(raw) is not dict:
            raise RecordError(f": expected an object, got {type(raw).__name__}")
        if len(raw) != len(known) or raw.keys() - known:
            extra = raw.keys() - known
            forbidden = sorted(extra & FORBIDDEN_FIELDS)
            if forbidden:
                raise RecordError(f": derived field(s) {forbidden} are not facts and are never stored")
            if extra:
                raise RecordError(f": unknown field(s) {sorted(extra)}")
            missing = [name for name in required if name not in raw]
            if missing:
                raise RecordError(f": missing field(s) {missing}")
        try:
            values = {name: dec(raw[name]) for name, dec in plan if name in raw}
        except RecordError as error:
            failing = next(n for n, dec in plan if n in raw and _fails(dec, raw[n]))
            raise RecordError(f".{failing}{error}") from None
        if not direct:
            return cls(**values)
        record: Any = object.__new__(cls)
        record.__dict__.update(defaults)
        record.__dict__.update(values)
        return record

    fast = _fast_decoder(cls, [name for name, _ in plan], hints, decode) if direct else None
    return fast if fast is not None else decode


__all__ = ["RecordError", "canonical_json", "from_body", "record_json", "to_body"]
