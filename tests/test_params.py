from __future__ import annotations

import math
import re
from dataclasses import fields
from datetime import time
from pathlib import Path
from typing import Dict, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import params as params_module
from core.params import Params, parameter_name


def getter(values: Dict[str, str]):  # type: ignore[no-untyped-def]
    def get(name: str) -> Optional[str]:
        return values.get(name)

    return get


def test_defaults_are_the_chosen_sources() -> None:
    params = Params()
    assert params.underlying == "SPY"
    assert params.lt112_dte == 120  # [N]
    assert params.lt112_np_profit_target == 0.95  # [N]
    assert params.zero_dte_entry_time == time(10, 30)  # [F]
    assert params.zero_dte_profit_target == 0.50  # [F]
    assert (params.risk_halve_drawdown, params.risk_no_new_drawdown, params.risk_close_all_drawdown) == (
        0.10,
        0.15,
        0.20,
    )


def test_every_field_cites_a_source_or_says_ours() -> None:
    text = Path(params_module.__file__).read_text(encoding="utf-8")
    body = text[text.index("class Params") : text.index("def __post_init__")]
    for field in fields(Params):
        if field.name.endswith("_enabled"):
            continue
        # the field's own line or the comment block right above it cites a source
        match = re.search(rf"((?:\s*#[^\n]*\n)*)\s*{field.name}: [^\n]*", body)
        assert match is not None, field.name
        assert re.search(r"\[[NFPR]\]|ours", match.group(0)), f"{field.name} cites no source"


def test_spy_widths_are_a_tenth_of_index_points() -> None:
    spy = Params()
    spx = Params.from_parameters(getter({"underlying": "SPX"}))
    assert spy.lt112_width == pytest.approx(5.0) and spy.zero_dte_width == pytest.approx(3.0)
    assert spx.lt112_width == pytest.approx(50.0) and spx.zero_dte_width == pytest.approx(30.0)
    assert Params.from_parameters(getter({"underlying": "spxw"})).scale == 1.0


def test_overrides_by_kebab_name() -> None:
    params = Params.from_parameters(
        getter(
            {
                "lt112-dte": "150",
                "lt112-np-profit-target": "0.90",
                "zero-dte-entry-time": "10:35",
                "lt112-enabled": "false",
                "zero-dte-enabled": "TRUE",
                "risk-bp-by-vix": "15:0.5,inf:0.7",
                "lt112-exit-dte": "",
            }
        )
    )
    assert params.lt112_dte == 150
    assert params.lt112_np_profit_target == 0.90
    assert params.zero_dte_entry_time == time(10, 35)
    assert params.lt112_enabled is False and params.zero_dte_enabled is True
    assert params.risk_bp_by_vix == ((15.0, 0.5), (math.inf, 0.7))
    assert params.lt112_exit_dte == Params().lt112_exit_dte  # empty string keeps the default


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lt112-dte", "abc"),
        ("lt112-dte", "0"),
        ("lt112-enabled", "maybe"),
        ("zero-dte-entry-time", "25:00"),
        ("lt112-np-profit-target", "1.5"),
        ("lt112-np-profit-target", "nan"),
        ("underlying", "QQQ"),
        ("risk-halve-drawdown", "0.30"),
        ("risk-bp-by-vix", "20:0.5,10:0.6,inf:0.7"),
        ("risk-bp-by-vix", "20:0.5"),
        ("lt112-exit-dte", "120"),
        ("zero-dte-evaluate-time", "10:00"),
        ("lt112-naked-put-delta", "0.30"),
    ],
)
def test_bad_values_name_the_parameter(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        Params.from_parameters(getter({name: value}))


def test_other_underlying_needs_a_point_scale() -> None:
    params = Params.from_parameters(getter({"underlying": "QQQ", "point-scale": "0.04"}))
    assert params.lt112_width == pytest.approx(2.0)


def test_hash_is_short_key_safe_and_tracks_values() -> None:
    base = Params()
    assert re.fullmatch(r"[0-9a-f]{12}", base.params_hash())
    assert base.params_hash() == Params().params_hash()
    assert Params.from_parameters(getter({"lt112-dte": "121"})).params_hash() != base.params_hash()


@settings(max_examples=40, derandomize=True)
@given(st.integers(min_value=31, max_value=400), st.floats(min_value=0.01, max_value=1.0))
def test_overrides_round_trip_through_canonical_text(dte: int, target: float) -> None:
    params = Params.from_parameters(getter({"lt112-dte": str(dte), "zero-dte-profit-target": repr(target)}))
    lines = dict(line.split("=", 1) for line in params.canonical_text().splitlines())
    again = Params.from_parameters(getter(lines))
    assert again == params
    assert again.params_hash() == params.params_hash()
    assert set(lines) == {parameter_name(f.name) for f in fields(Params)}
