"""The template's own parameters (underlying, broker margin rates, portfolio risk) and the machinery every
strategy's typed config uses to read its values from config.json, with a source for each value.

Sources (docs/strategy-rules.md):
  [N] community notes on Tom King's LT112 campaign (ericpko.notion.site)
  [F] "Tom King Trading System - Automated Framework Reference" PDF (unknown author; figures are claims)
  [P] press summaries of the 1-1-2 video
  [R] the origin repository's code and constants
  [T] tastytrade's published research on short premium (45 DTE, manage winners at 50 %, exit by 21 DTE)
  ours: no source gives a value; we chose it and say why.
Conflicts are settled in the config classes, never in code: [N] for LT112, [F] for 0DTE and the portfolio rules.

Every field can be overridden from config.json `parameters`: the parameter name is the field name in kebab-case,
after the strategy's prefix for a strategy's own config (`LT112Config.dte` -> `lt112-dte`; `Params.underlying` ->
`underlying`). A bad value raises ValueError naming the parameter. Each strategy's rule values live in its own
file (strategies/<name>.py, a frozen dataclass read by `read_config`); only what every strategy shares is here.

Points: strike widths are given in ES/SPX index points, as the sources give them, and scaled to the traded
underlying by `Params.scale` (SPY trades at ~1/10 of SPX, so 50 ES points are 5 SPY points).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, fields, replace
from datetime import time
from typing import Any, Callable, ClassVar, Dict, Iterable, NoReturn, Optional, Sequence, Tuple, TypeVar

# Points of the traded underlying per ES/SPX index point: SPY ~ SPX / 10; SPX and SPXW quote index points.
UNDERLYING_POINT_SCALE: Dict[str, float] = {"SPY": 0.1, "SPX": 1.0, "SPXW": 1.0}
INDEX_UNDERLYINGS = frozenset({"SPX", "SPXW", "NDX", "RUT"})
ENTRY_ORDER_KINDS = ("limit", "market")

BpTable = Tuple[Tuple[float, float], ...]
ParameterGetter = Callable[[str], Optional[str]]
C = TypeVar("C")


@dataclass(frozen=True)
class Params:
    PARAMETER_PREFIX: ClassVar[str] = ""

    # -- general ----------------------------------------------------------------------------------------------------
    underlying: str = "SPY"  # [P] uses SPY; [N][F] prefer /ES, which LEAN equity/index options cannot mirror
    point_scale: float = 0.0  # 0 = from UNDERLYING_POINT_SCALE; set it to trade another underlying (ours)
    # The margin a naked option needs at the broker (LEAN's option margin model for a short: the premium plus 20 %
    # of the underlying less the out-of-the-money amount, at least 10 % of the strike; 15 % instead of 20 % for
    # index options such as SPX). Strategies size naked legs with it; the engine estimates margin in use with it.
    naked_margin_fraction_equity: float = 0.20  # equity options such as SPY (ours, as LEAN margins them)
    naked_margin_fraction_index: float = 0.15  # index options such as SPX (ours, as LEAN margins them)
    naked_margin_floor: float = 0.10  # ... at least 10 % of the strike (ours, as LEAN margins them)
    # "limit": entries go out as one combo limit order at mid, walked toward the far side and never past a credit
    # of one tick for a credit structure (engine/limit_entries.py); "market": one combo market order (ours)
    entry_orders: str = "limit"

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
    # The kill switch (ours, no source has one): once tripped, no new entries (exits and protection go on) until a
    # person resets it; kept in the risk record, so a restart never resets it. `kill_switch` true trips it (a
    # person's stop button); `kill_switch_on_close_all` trips it when the CLOSE_ALL breaker fires, so trading
    # does not resume by itself after [F]'s two-week break; a reset is `kill_switch_reset` set to any value other
    # than the one it had when the switch tripped (e.g. the date of the review).
    kill_switch: bool = False  # ours: true trips the switch (the person's stop button)
    kill_switch_on_close_all: bool = True  # ours: the CLOSE_ALL breaker trips it; false: [F]'s break ends by itself
    kill_switch_reset: str = ""  # ours: the reset token; any new value resets a tripped switch

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
        if self.underlying in INDEX_UNDERLYINGS:
            return self.naked_margin_fraction_index
        return self.naked_margin_fraction_equity

    def naked_margin(self, strike: float, spot: float, premium: float = 0.0) -> float:
        """Per share: what the broker holds for one naked option (premium + rate x spot - OTM amount, at least the
        floor x strike). Conservative callers pass premium 0 and spot as the reference without the OTM credit."""
        out_of_money = max(0.0, spot - strike)
        return premium + max(self.naked_margin_fraction * spot - out_of_money, self.naked_margin_floor * strike)

    @classmethod
    def from_parameters(cls, get: ParameterGetter) -> Params:
        return read_config(cls, get)


# ----------------------------------------------------------------------------------------------- config machinery


def parameter_name(field_name: str, prefix: str = "") -> str:
    """`lt112` + `exit_dte` -> `lt112-exit-dte`; without a prefix the field name alone, in kebab-case."""
    name = field_name.replace("_", "-")
    return f"{prefix}-{name}" if prefix else name


def prefix_of(config: object) -> str:
    return str(getattr(type(config), "PARAMETER_PREFIX", ""))


def read_config(cls: type[C], get: ParameterGetter) -> C:
    """An instance of the config dataclass `cls` with every field read from `get(parameter name)`; None, missing or
    blank keeps the default. Values are typed by each field's default; the class validates itself."""
    defaults = cls()
    prefix = prefix_of(defaults)
    changes: Dict[str, Any] = {}
    for field in fields(defaults):  # type: ignore[arg-type]
        name = parameter_name(field.name, prefix)
        text = get(name)
        if text is None or text.strip() == "":
            continue
        changes[field.name] = _parse(name, text.strip(), getattr(defaults, field.name))
    return replace(defaults, **changes)  # type: ignore[type-var]


def config_text(config: object) -> str:
    """name=value lines in field order: the identity of a rule set."""
    prefix = prefix_of(config)
    return "\n".join(
        f"{parameter_name(f.name, prefix)}={_format(getattr(config, f.name))}"
        for f in fields(config)  # type: ignore[arg-type]
    )


def rules_hash(configs: Iterable[object]) -> str:
    """12 hex digits of sha256 over the configs' canonical text: short and safe inside ObjectStore keys."""
    text = "\n".join(config_text(config) for config in configs)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def fail(config: object, field_name: str, message: str) -> NoReturn:
    raise ValueError(f"parameter {parameter_name(field_name, prefix_of(config))!r}: {message}")


def require(config: object, ok: bool, field_name: str, message: str) -> None:
    if not ok:
        fail(config, field_name, message)


def require_each(config: object, names: Sequence[str], test: Callable[[Any], bool], message: str) -> None:
    """Every named field passes `test`, else ValueError naming the first one that does not."""
    for name in names:
        require(config, test(getattr(config, name)), name, message)


def open_fraction(value: float) -> bool:
    return 0 < value < 1


def fraction(value: float) -> bool:
    return 0 < value <= 1


def positive_finite(value: float) -> bool:
    return 0 < value < math.inf


def _format(value: object) -> str:
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, tuple):
        return ",".join(f"{_format(bound)}:{_format(part)}" for bound, part in value)
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
        if name == "underlying":
            return text.upper()
        return text.lower() if name == "entry-orders" else text
    except ValueError as error:
        raise ValueError(f"parameter {name!r}: bad value {text!r} ({error})") from None


def _parse_bp_table(text: str) -> BpTable:
    """ "13:0.4,18:0.6,inf:0.8" -> ((13.0, 0.4), (18.0, 0.6), (inf, 0.8))."""
    rows = []
    for item in text.split(","):
        bound, _, fraction = item.partition(":")
        rows.append((float(bound), float(fraction)))
    return tuple(rows)


def _validate(params: Params) -> None:
    require(
        params, params.point_scale >= 0 and not math.isinf(params.point_scale), "point_scale", "must be >= 0 and finite"
    )
    require(
        params,
        params.point_scale > 0 or params.underlying in UNDERLYING_POINT_SCALE,
        "underlying",
        f"{params.underlying!r} has no known point scale; set point-scale or use SPY/SPX/SPXW",
    )
    require(params, params.entry_orders in ENTRY_ORDER_KINDS, "entry_orders", f"must be one of {ENTRY_ORDER_KINDS}")
    margin_rates = ("naked_margin_fraction_equity", "naked_margin_fraction_index", "naked_margin_floor")
    require_each(params, margin_rates, open_fraction, "must be between 0 and 1 (exclusive)")
    require_each(params, ("risk_close_all_pause_days", "risk_no_new_pause_days"), lambda v: v >= 0, "must be >= 0")
    require_each(params, ("risk_max_consecutive_losses", "risk_history_limit"), lambda v: v >= 1, "must be >= 1")
    _validate_risk(params)
    _validate_bp_table(params.risk_bp_by_vix)
    token = params.kill_switch_reset
    require(params, len(token) <= 64 and token.isprintable(), "kill_switch_reset", "at most 64 printable characters")


def _fail(field_name: str, message: str) -> NoReturn:
    fail(Params, field_name, message)


def _validate_risk(params: Params) -> None:
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
