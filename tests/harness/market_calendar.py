"""US equity market calendar for the simulation: 09:30-16:00 New York time, weekends and NYSE holidays closed,
13:00 closes on early-close days.

Follows LEAN's `Data/market-hours/market-hours-database.json` entry "Equity-usa-[*]": its "earlyCloses" list
(13:00:00 on the listed days, copied below for 2023-2026) and its holidays; LEAN's
`Common/Securities/SecurityExchangeHours.cs` `GetNextMarketClose` returns that 13:00 close on those days.
Options take their underlying's holidays and early closes (Common/Util/MarketHoursDatabaseJsonConverter.cs
`ConvertToEntry`: "Option-usa-[*]" lists none of its own). The exchange is closed AT the close
(MarketHoursSegment.Contains, see `is_market_open`).
Differs from LEAN: the holiday and early-close lists are hard-coded for 2023-2026 (LEAN reads the database).
Option expiries are SPY-like: a daily expiry for every trading day in the next 10 calendar days (so a Friday
always has a 0DTE expiry), Friday weeklies out to 60 days, third-Friday monthlies out to 200 days; an expiry
that falls on a holiday moves to the trading day before.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import List

OPEN = time(9, 30)
CLOSE = time(16, 0)

HOLIDAYS = frozenset(
    date.fromisoformat(day)
    for day in (
        "2023-01-02 2023-01-16 2023-02-20 2023-04-07 2023-05-29 2023-06-19 2023-07-04 2023-09-04 2023-11-23 "
        "2023-12-25 2024-01-01 2024-01-15 2024-02-19 2024-03-29 2024-05-27 2024-06-19 2024-07-04 2024-09-02 "
        "2024-11-28 2024-12-25 2025-01-01 2025-01-09 2025-01-20 2025-02-17 2025-04-18 2025-05-26 2025-06-19 "
        "2025-07-04 2025-09-01 2025-11-27 2025-12-25 2026-01-01 2026-01-19 2026-02-16 2026-04-03 2026-05-25 "
        "2026-06-19 2026-07-03 2026-09-07 2026-11-26 2026-12-25"
    ).split()
)


# market-hours-database.json, "Equity-usa-[*]" -> "earlyCloses" (all "13:00:00"), the 2023-2026 entries
EARLY_CLOSE = time(13, 0)
EARLY_CLOSES = frozenset(
    date.fromisoformat(day)
    for day in (
        "2023-07-03 2023-11-24 2024-07-03 2024-11-29 2024-12-24 2025-07-03 2025-11-28 2025-12-24 2026-11-27 2026-12-24"
    ).split()
)


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def close_of(day: date) -> time:
    """The regular session's close on a trading day: 13:00 on an early-close day, else 16:00."""
    return EARLY_CLOSE if day in EARLY_CLOSES else CLOSE


def is_market_open(moment: datetime) -> bool:
    """Common/Securities/MarketHoursSegment.cs `Contains` (`time >= Start && time < End`, LEAN 24863901): open
    from 09:30 up to, not including, the day's close. At 16:00 (13:00 on an early-close day) the exchange is
    closed, although that slice still carries the session's last bar."""
    day = moment.date()
    return is_trading_day(day) and OPEN <= moment.time() < close_of(day)


def next_market_close(moment: datetime) -> datetime:
    """LEAN's SecurityExchangeHours.GetNextMarketClose(localDateTime, extendedMarketHours=False): the first
    regular-session close strictly after `moment` (non-inclusive), early closes included."""
    day = moment.date()
    for _ in range(15):
        if is_trading_day(day):
            close = datetime.combine(day, close_of(day))
            if moment < close:
                return close
        day += timedelta(days=1)
    raise ValueError(f"no market close within two weeks of {moment}")


def slice_times(start: date, end: date, step_minutes: int) -> List[datetime]:
    """End times of the bars from start to end inclusive (LEAN stamps a slice with its bars' end time):
    09:30+step ... the day's close (16:00, or 13:00 on an early-close day) on each trading day."""
    if step_minutes <= 0 or 390 % step_minutes or 210 % step_minutes:
        raise ValueError("step_minutes must divide the 390-minute session and the 210-minute early-close session")
    times: List[datetime] = []
    day = start
    while day <= end:
        if is_trading_day(day):
            moment = datetime.combine(day, OPEN)
            session = datetime.combine(day, close_of(day)) - moment
            for _ in range(int(session.total_seconds()) // 60 // step_minutes):
                moment += timedelta(minutes=step_minutes)
                times.append(moment)
        day += timedelta(days=1)
    return times


def trading_day_at_or_before(day: date) -> date:
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


def next_trading_day(day: date) -> date:
    """The first trading day strictly after `day` (SecurityExchangeHours.GetNextTradingDay)."""
    day += timedelta(days=1)
    while not is_trading_day(day):
        day += timedelta(days=1)
    return day


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def option_expiries(today: date, max_days: int = 200) -> List[date]:
    """Expiries listed on `today` (today's 0DTE included when today trades), sorted."""
    found = set()
    for offset in range(0, 11):
        day = today + timedelta(days=offset)
        if is_trading_day(day):
            found.add(day)
    for offset in range(0, 61):
        day = today + timedelta(days=offset)
        if day.weekday() == 4:
            found.add(trading_day_at_or_before(day))
    year, month = today.year, today.month
    while True:
        expiry = trading_day_at_or_before(_third_friday(year, month))
        if (expiry - today).days > max_days:
            break
        if expiry >= today:
            found.add(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(day for day in found if day >= today)
