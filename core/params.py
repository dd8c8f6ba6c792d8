"""Every rule value of the strategies and the portfolio limits, in one place, with its source.

Sources (docs/strategy-rules.md):
  [N] community notes on Tom King's LT112 campaign (ericpko.notion.site)
  [F] "Tom King Trading System - Automated Framework Reference" PDF (unknown author; figures are claims)
  [P] press summaries of the 1-1-2 video
  [R] the origin repository's code and constants
  ours: no source gives a value; we chose it and say why.
Conflicts are settled here, never in code: [N] for LT112, [F] for 0DTE and the portfolio rules.

Every field can be overridden from config.json `parameters`: the parameter name is the field name in
kebab-case (`lt112_dte` -> `lt112-dte`). A bad value raises ValueError naming the parameter.

Points: strike widths are given in ES/SPX index points, as the sources give them, and scaled to the traded
underlying by `point_scale` (SPY trades at ~1/10 of SPX, so 50 ES points are 5 SPY points).

Simplification: [N] and [F] manage the put debit spread (PDS) and the naked puts (NPs) of the LT112 as two
trades. This template closes the whole 1-1-2 together when the NP rule (target, stop or DTE) fires.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields, replace
from datetime import time
from typing import Any, Callable, Dict, Optional, Tuple

# Points of the traded underlying per ES/SPX index point: SPY ~ SPX / 10; SPX and SPXW quote index points.
UNDERLYING_POINT_SCALE: Dict[str, float] = {"SPY": 0.1, "SPX": 1.0, "SPXW": 1.0}

BpTable = Tuple[Tuple[float, float], ...]


@dataclass(frozen=True)
class Params:
    # -- general ----------------------------------------------------------------------------------------------------
    underlying: str = "SPY"  # [P] uses SPY; [N][F] prefer /ES, which LEAN equity/index options cannot mirror
    point_scale: float = 0.0  # 0 = from UNDERLYING_POINT_SCALE; set it to trade another underlying (ours)

    # -- LT112 (defaults [N]) ---------------------------------------------------------------------------------------
    lt112_enabled: bool = True
    lt112_dte: int = 120  # [N][F] 120 DTE; [R] 112, 45 elsewhere in [R]: not chosen
    lt112_dte_window: int = 20  # nearest listed expiry within 120 +- 20 days (ours: monthlies are ~30 days apart)
    lt112_entry_time: time = time(10, 0)  # [R] Wednesday 10:00; [F] gives the day only
    lt112_entry_window_minutes: int = 60  # ours: a missed bar still enters inside the hour
    lt112_long_put_delta: float = 0.25  # [N] long put about 22-25 delta
    lt112_naked_put_delta: float = 0.05  # [N][F] naked puts about 5 delta
    lt112_long_put_spot_fraction: float = 0.93  # [F] percent rule, used when the chain has no deltas
    lt112_naked_put_spot_fraction: float = 0.88  # [F] percent rule, used when the chain has no deltas
    lt112_width_index_points: float = 50.0  # [N][F] PDS 50 ES points wide (5 SPY points)
    lt112_require_net_credit: bool = True  # [P][N] the 1-1-2 is opened for a net credit
    lt112_np_profit_target: float = 0.95  # [N] 95 % of the NP credit; [F] 90 % (about day 30): set 0.90
    lt112_np_stop_credit_multiple: float = 2.0  # [N] NP price at 3x the credit = a loss of 2x the credit
    lt112_np_stop_net_liq_fraction: float = 0.02  # [N] or an NP loss of 2 % of net liq, whichever first
    lt112_exit_dte: int = 30  # [F] NPs closed at 30 DTE ([N] silent; [R] 21 DTE not chosen)
    lt112_bp_per_position: float = 0.06  # [F] LT112 6 % of the account per position (ES)
    # The margin a naked put needs at the broker the strategy trades through (LEAN's option margin model for a
    # short: the premium plus 20 % of the underlying less the out-of-the-money amount, at least 10 % of the
    # strike; 15 % instead of 20 % for index options such as SPX). [F]'s "6 % per position" budget was written
    # for ES futures options; sizing with the margin of the option actually traded is what lets it trade.
    lt112_naked_margin_fraction: float = 0.20  # equity options such as SPY (ours, as LEAN margins them)
    lt112_index_naked_margin_fraction: float = 0.15  # index options such as SPX (ours, as LEAN margins them)
    lt112_naked_margin_floor: float = 0.10  # ... at least 10 % of the strike (ours, as LEAN margins them)
    lt112_max_units: int = 10  # safety cap per position (ours)

    # -- Friday 0DTE (defaults [F]) ---------------------------------------------------------------------------------
    zero_dte_enabled: bool = True
    zero_dte_weekday: int = 4  # [F] Fridays only (Monday = 0)
    zero_dte_entry_time: time = time(10, 30)  # [F] enter at 10:30 ET, never earlier
    zero_dte_entry_window_minutes: int = 15  # ours: 10:30-10:45 so a missed bar still enters
    zero_dte_move_threshold: float = 0.005  # [F] +-0.5 % from the open picks the structure
    zero_dte_fade_moves: bool = True  # [F] fade: up -> call spread, down -> put spread ([R] inverts it: not chosen)
    zero_dte_short_delta: float = 0.20  # [F] 15-25 delta, never 30+; [R] 0.16 not chosen
    zero_dte_short_spot_distance: float = 0.0075  # ours, no-delta fallback: ~20 delta 0DTE distance at VIX ~15
    zero_dte_width_index_points: float = 30.0  # [F] 30-point wings (3 SPY points)
    zero_dte_profit_target: float = 0.50  # [F] 50 % of the credit (the credit received at the fill)
    # ours: refuse a structure whose credit is under 5 % of its wing width (3-wide SPY: 0.15; less cannot pay for
    # its stop, spread and fees)
    zero_dte_min_credit_width: float = 0.05
    # [F] says both "2x credit" and "100 % loss: close to prevent 2x". Chosen: a loss of 1x the credit
    # (buy back at 2x the credit received), which is both texts read as a buy-back price. 2.0 = the other reading.
    zero_dte_stop_credit_multiple: float = 1.0
    zero_dte_evaluate_time: time = time(14, 30)  # [F] evaluate at 14:30: a losing position is closed then (ours)
    zero_dte_close_time: time = time(15, 0)  # [F] close by 15:00
    zero_dte_deadline_time: time = time(15, 30)  # [F] hard deadline 15:30
    zero_dte_min_vix: float = 0.0  # [F] any VIX level; [R] 22 not chosen
    zero_dte_bp_per_position: float = 0.02  # [F] about 2 % BP per spread
    zero_dte_max_units: int = 25  # safety cap per position (ours)

    # -- portfolio risk (defaults [F]) ------------------------------------------------------------------------------
    risk_halve_drawdown: float = 0.10  # [F] -10 % -> halve new positions
    risk_no_new_drawdown: float = 0.15  # [F] -15 % -> no new trades
    risk_close_all_drawdown: float = 0.20  # [F] -20 % -> close everything and take a break
    risk_close_all_pause_days: int = 14  # [F] "2-week break"
    risk_no_new_pause_days: int = 14  # ours: after this NO_NEW steps down to HALVE (else nothing ever trades again)
    risk_relax_drawdown: float = 0.05  # ours: breakers relax once the drawdown is back under 5 %
    risk_max_consecutive_losses: int = 3  # ours: from 3 losses in a row new positions are halved
    risk_daily_loss_limit: float = 0.03  # ours: no new entry for the day once 3 % of equity is lost that day
    risk_bp_reserve: float = 0.20  # [F] always keep 20 % BP in reserve
    # [F] max BP in use by VIX (upper VIX bound exclusive, fraction); the low end of each [F] range.
    # [R]'s 6-regime table and flat 35 % are not chosen. "> 30: 80 % for put selling only" kept as 0.80.
    risk_bp_by_vix: BpTable = ((13.0, 0.40), (18.0, 0.60), (25.0, 0.75), (30.0, 0.50), (math.inf, 0.80))
    risk_bp_unknown_vix: float = 0.40  # ours: the most conservative row when VIX is unknown
    # closed position ids the risk record remembers against folding one twice; only positions not yet retired
    # into the archive can come back, and the record is written on every new peak, so it stays short
    risk_history_limit: int = 32

    def __post_init__(self) -> None:
        _validate(self)

    # -- derived values (not parameters) ----------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        """Underlying points per ES/SPX index point."""
        if self.point_scale > 0:
            return self.point_scale
        return UNDERLYING_POINT_SCALE[self.underlying]

    @property
    def naked_margin_fraction(self) -> float:
        """The naked-option margin fraction of the underlying traded: index options have their own."""
        if self.underlying in ("SPX", "SPXW", "NDX", "RUT"):
            return self.lt112_index_naked_margin_fraction
        return self.lt112_naked_margin_fraction

    @property
    def lt112_width(self) -> float:
        """PDS width in points of the traded underlying."""
        return self.lt112_width_index_points * self.scale

    @property
    def zero_dte_width(self) -> float:
        """0DTE wing width in points of the traded underlying."""
        return self.zero_dte_width_index_points * self.scale

    # -- config ---------------------------------------------------------------------------------------------------

    @classmethod
    def from_parameters(cls, get: Callable[[str], Optional[str]]) -> Params:
        """Read every field from `get(kebab-name)`; None (or missing) keeps the default."""
        defaults = cls()
        changes: Dict[str, Any] = {}  # values typed by _parse from each field's default
        for field in fields(cls):
            name = parameter_name(field.name)
            text = get(name)
            if text is None or text.strip() == "":
                continue
            changes[field.name] = _parse(name, text.strip(), getattr(defaults, field.name))
        return replace(defaults, **changes)

    def canonical_text(self) -> str:
        """name=value lines sorted by name: the identity of a rule set."""
        return "\n".join(f"{parameter_name(f.name)}={_format(getattr(self, f.name))}" for f in fields(self))

    def params_hash(self) -> str:
        """12 hex digits of sha256 of the canonical values: short and safe inside ObjectStore keys."""
        return hashlib.sha256(self.canonical_text().encode("utf-8")).hexdigest()[:12]


def parameter_name(field_name: str) -> str:
    return field_name.replace("_", "-")


def _format(value: object) -> str:
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, tuple):
        return ",".join(f"{_format(bound)}:{_format(fraction)}" for bound, fraction in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse(name: str, text: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return lowered in _TRUE
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            number = float(text)
            if math.isnan(number):
                raise ValueError("NaN")
            return number
        if isinstance(default, time):
            return time.fromisoformat(text)
        if isinstance(default, tuple):
            return _parse_bp_table(text)
        return text.upper() if name == "underlying" else text
    except ValueError as error:
        raise ValueError(f"parameter {name!r}: bad value {text!r} ({error})") from None


def _parse_bp_table(text: str) -> BpTable:
    """ "13:0.4,18:0.6,inf:0.8" -> ((13.0, 0.4), (18.0, 0.6), (inf, 0.8))."""
    rows = []
    for item in text.split(","):
        bound, _, fraction = item.partition(":")
        rows.append((float(bound), float(fraction)))
    return tuple(rows)


def _fail(field_name: str, message: str) -> None:
    raise ValueError(f"parameter {parameter_name(field_name)!r}: {message}")


def _validate(params: Params) -> None:
    _validate_market(params)
    _validate_counts(params)
    _validate_fractions(params)
    _validate_clock_and_risk(params)
    _validate_bp_table(params.risk_bp_by_vix)


def _validate_market(params: Params) -> None:
    if params.point_scale < 0 or math.isinf(params.point_scale):
        _fail("point_scale", "must be >= 0 and finite")
    if params.point_scale == 0 and params.underlying not in UNDERLYING_POINT_SCALE:
        _fail("underlying", f"{params.underlying!r} has no known point scale; set point-scale or use SPY/SPX/SPXW")


def _validate_counts(params: Params) -> None:
    for name in ("lt112_dte", "lt112_entry_window_minutes", "zero_dte_entry_window_minutes"):
        if getattr(params, name) <= 0:
            _fail(name, "must be > 0")
    for name in ("lt112_dte_window", "lt112_exit_dte", "risk_close_all_pause_days", "risk_no_new_pause_days"):
        if getattr(params, name) < 0:
            _fail(name, "must be >= 0")
    if params.lt112_exit_dte >= params.lt112_dte:
        _fail("lt112_exit_dte", "must be below lt112-dte")
    for name in ("lt112_max_units", "zero_dte_max_units", "risk_max_consecutive_losses", "risk_history_limit"):
        if getattr(params, name) < 1:
            _fail(name, "must be >= 1")
    if not 0 <= params.zero_dte_weekday <= 6:
        _fail("zero_dte_weekday", "must be 0 (Monday) to 6")


def _validate_fractions(params: Params) -> None:
    open_fractions = (
        "lt112_long_put_delta",
        "lt112_naked_put_delta",
        "lt112_long_put_spot_fraction",
        "lt112_naked_put_spot_fraction",
        "zero_dte_short_delta",
        "zero_dte_short_spot_distance",
        "zero_dte_move_threshold",
        "lt112_np_stop_net_liq_fraction",
        "lt112_naked_margin_fraction",
        "lt112_index_naked_margin_fraction",
        "lt112_naked_margin_floor",
        "zero_dte_min_credit_width",
    )
    for name in open_fractions:
        if not 0 < getattr(params, name) < 1:
            _fail(name, "must be between 0 and 1 (exclusive)")
    for name in (
        "lt112_np_profit_target",
        "zero_dte_profit_target",
        "lt112_bp_per_position",
        "zero_dte_bp_per_position",
    ):
        if not 0 < getattr(params, name) <= 1:
            _fail(name, "must be in (0, 1]")
    if params.lt112_naked_put_delta >= params.lt112_long_put_delta:
        _fail("lt112_naked_put_delta", "must be below lt112-long-put-delta (naked puts sit further out)")
    if params.lt112_naked_put_spot_fraction >= params.lt112_long_put_spot_fraction:
        _fail("lt112_naked_put_spot_fraction", "must be below lt112-long-put-spot-fraction")
    for name in (
        "lt112_width_index_points",
        "zero_dte_width_index_points",
        "lt112_np_stop_credit_multiple",
        "zero_dte_stop_credit_multiple",
    ):
        value = getattr(params, name)
        if not 0 < value < math.inf:
            _fail(name, "must be > 0 and finite")


def _validate_clock_and_risk(params: Params) -> None:
    if not params.zero_dte_entry_time < params.zero_dte_evaluate_time < params.zero_dte_close_time:
        _fail("zero_dte_evaluate_time", "must lie between zero-dte-entry-time and zero-dte-close-time")
    if not params.zero_dte_close_time <= params.zero_dte_deadline_time:
        _fail("zero_dte_deadline_time", "must not be before zero-dte-close-time")
    if params.zero_dte_min_vix < 0:
        _fail("zero_dte_min_vix", "must be >= 0")
    if not 0 < params.risk_halve_drawdown < params.risk_no_new_drawdown < params.risk_close_all_drawdown < 1:
        _fail("risk_halve_drawdown", "breakers need 0 < halve < no-new < close-all < 1")
    if not 0 <= params.risk_relax_drawdown < params.risk_halve_drawdown:
        _fail("risk_relax_drawdown", "must be >= 0 and below risk-halve-drawdown")
    if not 0 < params.risk_daily_loss_limit < 1:
        _fail("risk_daily_loss_limit", "must be between 0 and 1")
    if not 0 <= params.risk_bp_reserve < 1:
        _fail("risk_bp_reserve", "must be in [0, 1)")
    if not 0 < params.risk_bp_unknown_vix <= 1:
        _fail("risk_bp_unknown_vix", "must be in (0, 1]")


def _validate_bp_table(table: BpTable) -> None:
    if not table:
        _fail("risk_bp_by_vix", "needs at least one row")
    bounds = [bound for bound, _ in table]
    if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        _fail("risk_bp_by_vix", "VIX bounds must be strictly increasing")
    if bounds[-1] != math.inf:
        _fail("risk_bp_by_vix", "the last row must be 'inf' so every VIX has a row")
    if any(not 0 < fraction <= 1 for _, fraction in table):
        _fail("risk_bp_by_vix", "fractions must be in (0, 1]")
