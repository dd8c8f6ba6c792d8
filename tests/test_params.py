"""Parameters: the template's own (core/params.py) and each registered strategy's typed config, read from
config.json by kebab-case name, validated, each value citing its source."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import fields
from datetime import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import params as params_module
from core.params import Params, config_text, parameter_name, read_config, rules_hash
from strategies import build_strategies, strategy_classes
from strategies.base import Strategy
from strategies.lt112 import LT112, LT112Config
from strategies.zero_dte import ZeroDte, ZeroDteConfig


def getter(values: Dict[str, str]):  # type: ignore[no-untyped-def]
    def get(name: str) -> Optional[str]:
        return values.get(name)

    return get


def build(values: Dict[str, str]) -> Tuple[Params, Dict[str, Strategy[Any]]]:
    params = Params.from_parameters(getter(values))
    return params, {s.strategy_id: s for s in build_strategies(getter(values), params)}


def test_defaults_are_the_chosen_sources() -> None:
    params, strategies = build({})
    assert params.underlying == "SPY"
    lt112, zero_dte = strategies["lt112"].config, strategies["zero_dte"].config
    assert isinstance(lt112, LT112Config) and isinstance(zero_dte, ZeroDteConfig)
    assert lt112.dte == 120 and lt112.np_profit_target == 0.95  # [N]
    assert zero_dte.entry_time == time(10, 30) and zero_dte.profit_target == 0.50  # [F]
    assert (params.risk_halve_drawdown, params.risk_no_new_drawdown, params.risk_close_all_drawdown) == (
        0.10,
        0.15,
        0.20,
    )


def _cites_a_source(text: str, class_name: str, field_name: str) -> bool:
    body = text[text.index(f"class {class_name}") :]
    match = re.search(rf"((?:\s*#[^\n]*\n)*)\s*{field_name}: [^\n]*", body)
    return match is not None and re.search(r"\[[NFPRT]\]|ours", match.group(0)) is not None


@pytest.mark.parametrize("config_type", [Params, *(cls.config_type for cls in strategy_classes())])
def test_every_field_cites_a_source_or_says_ours(config_type: type) -> None:
    text = Path(sys.modules[config_type.__module__].__file__ or "").read_text(encoding="utf-8")
    for field in fields(config_type):
        if field.name == "enabled":
            continue
        # the field's own line or the comment block right above it cites a source (own class or the base's)
        assert _cites_a_source(text, config_type.__name__, field.name) or field.name in (
            "bp_per_position",
            "max_units",
        ), f"{config_type.__name__}.{field.name} cites no source"


def test_spy_widths_are_a_tenth_of_index_points() -> None:
    spy = LT112(LT112Config(), Params()), ZeroDte(ZeroDteConfig(), Params())
    spx_market = Params.from_parameters(getter({"underlying": "SPX"}))
    spx = LT112(LT112Config(), spx_market), ZeroDte(ZeroDteConfig(), spx_market)
    assert spy[0].width == pytest.approx(5.0) and spy[1].width == pytest.approx(3.0)
    assert spx[0].width == pytest.approx(50.0) and spx[1].width == pytest.approx(30.0)
    assert Params.from_parameters(getter({"underlying": "spxw"})).scale == 1.0


def test_overrides_by_prefixed_kebab_name() -> None:
    params, strategies = build(
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
    lt112, zero_dte = strategies["lt112"], strategies["zero_dte"]
    assert isinstance(lt112, LT112) and isinstance(zero_dte, ZeroDte)
    assert lt112.config.dte == 150 and lt112.config.np_profit_target == 0.90
    assert zero_dte.config.entry_time == time(10, 35)
    assert lt112.enabled is False and zero_dte.enabled is True
    assert params.risk_bp_by_vix == ((15.0, 0.5), (math.inf, 0.7))
    assert lt112.config.exit_dte == LT112Config().exit_dte  # empty string keeps the default


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
        ("zero-dte-max-units", "0"),
        ("lt112-bp-per-position", "1.5"),
        ("naked-margin-floor", "1.2"),
    ],
)
def test_bad_values_name_the_parameter(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        build({name: value})


def test_other_underlying_needs_a_point_scale() -> None:
    params = Params.from_parameters(getter({"underlying": "QQQ", "point-scale": "0.04"}))
    assert LT112(LT112Config(), params).width == pytest.approx(2.0)


def test_hash_is_short_key_safe_and_tracks_values() -> None:
    base = rules_hash([Params(), LT112Config(), ZeroDteConfig()])
    assert re.fullmatch(r"[0-9a-f]{12}", base)
    assert base == rules_hash([Params(), LT112Config(), ZeroDteConfig()])
    changed = read_config(LT112Config, getter({"lt112-dte": "121"}))
    assert rules_hash([Params(), changed, ZeroDteConfig()]) != base


@settings(max_examples=40, derandomize=True)
@given(st.integers(min_value=31, max_value=400), st.floats(min_value=0.01, max_value=1.0))
def test_overrides_round_trip_through_canonical_text(dte: int, target: float) -> None:
    values = {"lt112-dte": str(dte), "zero-dte-profit-target": repr(target)}
    lt112, zero_dte = read_config(LT112Config, getter(values)), read_config(ZeroDteConfig, getter(values))
    lines: Dict[str, str] = {}
    for config in (Params(), lt112, zero_dte):
        lines.update(line.split("=", 1) for line in config_text(config).splitlines())
    assert read_config(LT112Config, getter(lines)) == lt112
    assert read_config(ZeroDteConfig, getter(lines)) == zero_dte
    expected = {parameter_name(f.name) for f in fields(Params)}
    expected |= {parameter_name(f.name, "lt112") for f in fields(LT112Config)}
    expected |= {parameter_name(f.name, "zero-dte") for f in fields(ZeroDteConfig)}
    assert set(lines) == expected


def test_no_two_parameters_share_a_name() -> None:
    names = [parameter_name(f.name) for f in fields(Params)]
    for cls in strategy_classes():
        names += [parameter_name(f.name, cls.config_type.PARAMETER_PREFIX) for f in fields(cls.config_type)]
    assert len(names) == len(set(names))


def test_module_docstring_names_the_sources() -> None:
    assert "[N]" in (params_module.__doc__ or "") and "ours" in (params_module.__doc__ or "")
