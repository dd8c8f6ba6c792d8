"""The harness follows LEAN (commit 24863901deffa9ec7985e21ef8fbdb0258efb9e4): one test per modelled behaviour,
named after it, each naming the LEAN file and member it follows. Shared by everyone: append your own."""

from __future__ import annotations

from datetime import date, datetime, time

from tests.harness.lean_stub.securities import ExchangeHours
from tests.harness.market_calendar import is_market_open, next_market_close, slice_times


def test_early_close_days_end_the_session_at_13_00() -> None:
    """Data/market-hours/market-hours-database.json "Equity-usa-[*]" lists "11/29/2024": "13:00:00" under
    "earlyCloses"; Common/Securities/SecurityExchangeHours.cs GetNextMarketClose returns that close, and it
    searches non-inclusively (from the close itself it returns the next session's close)."""
    friday = date(2024, 11, 29)
    assert next_market_close(datetime(2024, 11, 29)) == datetime(2024, 11, 29, 13, 0)
    assert next_market_close(datetime(2024, 11, 29, 13, 0)) == datetime(2024, 12, 2, 16, 0)
    assert next_market_close(datetime(2024, 11, 28)) == datetime(2024, 11, 29, 13, 0)  # Thanksgiving: closed
    assert ExchangeHours().get_next_market_close(datetime(2024, 12, 24), False) == datetime(2024, 12, 24, 13, 0)
    assert next_market_close(datetime(2024, 11, 27, 9, 0)) == datetime(2024, 11, 27, 16, 0)
    assert is_market_open(datetime(2024, 11, 29, 13, 0)) and not is_market_open(datetime(2024, 11, 29, 13, 5))
    bars = slice_times(friday, friday, 5)
    assert bars[0].time() == time(9, 35) and bars[-1].time() == time(13, 0)
