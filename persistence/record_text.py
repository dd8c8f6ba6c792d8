"""The canonical JSON text of a record, written directly: what codec.record_json returns on every save.

`text_of(record)` returns exactly `canonical_json(to_body(record))` (sorted keys, no spaces, ASCII, floats as
float.__repr__) without building the body dict first and without json's encoder, which calls a Python function
for every float. Per record type, the types of all field values are read at once and a plan is kept per pattern
of types (None or not, int or float...): each value is then written by a C function (str, int, float, bool,
None, enum members) or by the encoder of its nested type (dates, tuples, nested records). Items of tuples of
frozen records (legs, history and audit entries) are remembered by identity, as codec._memoized does.

Strict like the codec: `Refused` (or any exception) for anything that is not exactly a valid value of its
field's type (a bool for an int, a str subclass for a str, NaN, a wrong type); codec.record_json then runs the
reference path (to_body), which raises RecordError naming the field. So this path never accepts what the
reference refuses (tests/test_persistence_save_path.py compares the two).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from json.encoder import encode_basestring_ascii
from operator import add, itemgetter
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple, cast

Writer = Callable[[Any], str]
_MEMO_LIMIT = 4096
_PLANS_PER_TYPE = 256
_CONSTANTS: Dict[Any, str] = {None: "null", True: "true", False: "false"}


class Refused(ValueError):
    """A value this path does not write; the reference path says why (codec.to_body)."""


def text_of(record: Any) -> str:
    return _writer(cast(Hashable, type(record)))(record)


@cache
def _writer(tp: Any) -> Writer:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _optional_writer(tp)
    if origin is tuple:
        return _tuple_writer(tp)
    if isinstance(tp, type):
        if is_dataclass(tp):
            return _record_writer(tp)
        if issubclass(tp, Enum):
            return _enum_writer(tp)
        simple = _SIMPLE.get(tp)
        if simple is not None:
            return simple
    raise TypeError(f"no text writer for {tp!r}")


def _write_str(value: Any) -> str:
    if type(value) is not str:
        raise Refused
    text: str = encode_basestring_ascii(value)
    return text


def _write_int(value: Any) -> str:
    if type(value) is not int:
        raise Refused
    return int.__repr__(value)


def _write_float(value: Any) -> str:
    if type(value) not in (float, int) or not math.isfinite(value):
        raise Refused
    return float.__repr__(float(value))


def _write_bool(value: Any) -> str:
    if type(value) is not bool:
        raise Refused
    return "true" if value else "false"


def _write_decimal(value: Any) -> str:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise Refused
    text: str = encode_basestring_ascii(str(value))
    return text


def _write_date(value: Any) -> str:
    if type(value) is not date:
        raise Refused
    return f'"{value.isoformat()}"'  # digits and '-': nothing to escape


def _write_datetime(value: Any) -> str:
    if not isinstance(value, datetime):
        raise Refused
    return f'"{value.isoformat()}"'  # digits, '-', ':', 'T', '.', '+': nothing to escape


_SIMPLE: Dict[Any, Writer] = {
    str: _write_str,
    int: _write_int,
    float: _write_float,
    bool: _write_bool,
    Decimal: _write_decimal,
    date: _write_date,
    datetime: _write_datetime,
}


def _optional_inner(tp: Any) -> Any:
    args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    if len(args) != 1 or len(typing.get_args(tp)) != 2:
        raise TypeError(f"only Optional[X] unions are supported, not {tp!r}")
    return args[0]


def _optional_writer(tp: Any) -> Writer:
    inner = _writer(_optional_inner(tp))

    def write(value: Any) -> str:
        return "null" if value is None else inner(value)

    return write


def _memoized(write: Writer) -> Writer:
    """The text of a frozen item remembered by identity (kept alive by the memo, so its id is not reused)."""
    memo: Dict[int, Tuple[Any, str]] = {}

    def write_cached(value: Any) -> str:
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = write(value)
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[id(value)] = (value, text)
        return text

    return write_cached


def _tuple_writer(tp: Any) -> Writer:
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:
        item_type = args[0]
        write_item = _writer(item_type)
        if is_dataclass(item_type) and getattr(getattr(item_type, "__dataclass_params__", None), "frozen", False):
            write_item = _memoized(write_item)
        if item_type is str:  # the common case (ids, keys): one C call per item after one type check
            only_str = {str}

            def write_strs(value: Any) -> str:
                if type(value) is not tuple or (value and set(map(type, value)) != only_str):
                    raise Refused
                return "[" + ",".join(map(encode_basestring_ascii, value)) + "]"

            return write_strs

        def write_many(value: Any) -> str:
            if type(value) is not tuple:
                raise Refused
            return "[" + ",".join(map(write_item, value)) + "]"

        return write_many
    item_writers = [_writer(arg) for arg in args]

    def write_fixed(value: Any) -> str:
        if type(value) is not tuple or len(value) != len(item_writers):
            raise Refused
        return "[" + ",".join([write(item) for write, item in zip(item_writers, value, strict=True)]) + "]"

    return write_fixed


@cache
def _enum_texts(enum_type: type) -> Dict[Any, str]:
    return {member: _json_scalar(member._value_) for member in enum_type}  # type: ignore[attr-defined]


def _enum_writer(enum_type: type) -> Writer:
    texts = _enum_texts(enum_type)

    def write(value: Any) -> str:
        if type(value) is not enum_type:  # a plain "P" equals Right.PUT but is not one
            raise Refused
        return texts[value]

    return write


def _json_scalar(value: Any) -> str:
    writer = _SIMPLE.get(type(value))
    if writer is None:
        raise TypeError(f"enum value {value!r} has no JSON text")
    return writer(value)


class _Plan:
    __slots__ = ("finite", "writers")

    def __init__(self, writers: List[Writer], finite: Optional[Callable[[Any], bool]]) -> None:
        self.writers = writers
        self.finite = finite


def _value_writer(tp: Any, value_type: type) -> Optional[Tuple[bool, Writer]]:
    """(is a float to check for finiteness, C-speed writer) for a value of `value_type` in a field of type
    `tp`; None when no such value can be written (the reference path then refuses it)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if value_type is type(None):
            return False, _CONSTANTS.__getitem__
        tp = _optional_inner(tp)
    if tp is str and value_type is str:
        return False, encode_basestring_ascii
    if tp is int and value_type is int:
        return False, int.__repr__
    if tp is bool and value_type is bool:
        return False, _CONSTANTS.__getitem__
    if tp is float and value_type is float:
        return True, float.__repr__
    if tp is float and value_type is int:
        return False, _write_float
    if isinstance(tp, type) and issubclass(tp, Enum):
        return (False, _enum_texts(tp).__getitem__) if value_type is tp else None
    if value_type is tp or (tp is datetime and issubclass(value_type, datetime)):
        return False, _writer(tp)  # dates, Decimals, nested records (type-checked again inside)
    if typing.get_origin(tp) is tuple and value_type is tuple:
        return False, _writer(tp)
    return None


def _record_writer(cls: type) -> Writer:
    names = sorted(field.name for field in fields(cls))
    hints = typing.get_type_hints(cls)
    prefixes = [("{" if index == 0 else ",") + f'"{name}":' for index, name in enumerate(names)]
    pick = itemgetter(*names) if len(names) > 1 else (lambda attributes: (attributes[names[0]],))
    plans: Dict[Tuple[type, ...], Optional[_Plan]] = {}

    def plan_for(signature: Tuple[type, ...]) -> Optional[_Plan]:
        writers: List[Writer] = []
        floats: List[int] = []
        for index, (name, value_type) in enumerate(zip(names, signature, strict=True)):
            how = _value_writer(hints[name], value_type)
            if how is None:
                return None
            if how[0]:
                floats.append(index)
            writers.append(how[1])
        return _Plan(writers, _finite_check(floats))

    def write(value: Any) -> str:
        if type(value) is not cls:
            raise Refused
        values = pick(value.__dict__)
        signature = tuple(map(type, values))
        plan = plans.get(signature)
        if plan is None:
            if len(plans) >= _PLANS_PER_TYPE:
                plans.clear()
            plan = plans[signature] = plan_for(signature)
            if plan is None:
                raise Refused
        if plan.finite is not None and not plan.finite(values):
            raise Refused
        texts = [writer(item) for writer, item in zip(plan.writers, values, strict=True)]
        return "".join(map(add, prefixes, texts)) + "}"

    return write


def _finite_check(indexes: List[int]) -> Optional[Callable[[Any], bool]]:
    """Whether the floats at `indexes` are all finite: their sum is finite only then (a sum that overflows
    refuses finite values, and the reference path then writes them)."""
    if not indexes:
        return None
    if len(indexes) == 1:
        (index,) = indexes
        return lambda values: math.isfinite(values[index])
    pick = itemgetter(*indexes)
    return lambda values: math.isfinite(sum(pick(values)))


__all__ = ["Refused", "text_of"]
