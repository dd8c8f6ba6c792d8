"""Scheduled events: date_rules / time_rules / schedule.on with LEAN's backtest firing order (Common/Scheduling,
Engine/RealTime).

Follows LEAN:
- `date_rules.every_day()` yields every calendar day, weekends and holidays included (DateRules.EveryDay);
  `every_day(symbol)` yields only trading days.
- `time_rules.every(td)` yields 00:00, td, 2td, ... below 24:00 of each date: around the clock (TimeRules.Every); a
  non-positive interval raises ValueError (LEAN: ArgumentException). `time_rules.at(h, m[, s])` fires at that
  New York time every date of the date rule.
- Firing (BacktestingRealTimeHandler): before a slice at time T every event strictly before T fires in time order, ties
by creation
  order, with the algorithm time set to the event time; events at exactly T fire after the slice's prices and
  fills and before on_data. Events before the algorithm's start moment are skipped (SkipEventsUntil).
- A callback exception stops the algorithm (ScheduledEvent, SetRuntimeError): it is raised as `AlgorithmRuntimeError`.

Differs from LEAN: live mode fires on a real-time thread (LiveTradingRealTimeHandler); the harness fires live events
with the
deterministic backtest order above, so callbacks never interleave with on_data. Time zone is always New York.
"""

from __future__ import annotations

import heapq
from datetime import date, datetime, time, timedelta
from typing import Callable, Iterator, List, Optional, Tuple

from tests.harness.market_calendar import is_trading_day


class AlgorithmRuntimeError(Exception):
    """LEAN's SetRuntimeError: the algorithm stops (not a crash; a live deployment would stay stopped)."""

    def __init__(self, where: str, error: BaseException) -> None:
        super().__init__(f"{where}: {error!r}")
        self.where = where
        self.error = error


class DateRule:
    def __init__(self, name: str, trading_days_only: bool) -> None:
        self.name = name
        self.trading_days_only = trading_days_only

    def includes(self, day: date) -> bool:
        return is_trading_day(day) if self.trading_days_only else True


class TimeRule:
    def __init__(self, name: str, times_of_day: Tuple[timedelta, ...]) -> None:
        self.name = name
        self.times_of_day = times_of_day


class DateRules:
    def every_day(self, symbol: object = None) -> DateRule:
        if symbol is None:
            return DateRule("EveryDay", trading_days_only=False)
        return DateRule(f"{symbol}: EveryDay", trading_days_only=True)


class TimeRules:
    def every(self, interval: timedelta) -> TimeRule:
        if interval <= timedelta(0):
            raise ValueError("TimeRules.every: interval must be positive")
        times = []
        offset = timedelta(0)
        while offset < timedelta(days=1):
            times.append(offset)
            offset += interval
        return TimeRule(f"Every {interval.total_seconds() / 60:g} min", tuple(times))

    def at(self, hour: int | timedelta, minute: int = 0, second: int = 0) -> TimeRule:
        offset = hour if isinstance(hour, timedelta) else timedelta(hours=hour, minutes=minute, seconds=second)
        return TimeRule(f"{offset.total_seconds() / 3600:g}", (offset,))


class ScheduledEvent:
    def __init__(self, name: str, date_rule: DateRule, time_rule: TimeRule, callback: Callable[[], None]) -> None:
        self.name = name
        self.enabled = True
        self._date_rule = date_rule
        self._time_rule = time_rule
        self.callback = callback
        self._times: Optional[Iterator[datetime]] = None
        self.next_event_time: Optional[datetime] = None

    def _generate(self, first_day: date) -> Iterator[datetime]:
        day = first_day
        while True:
            if self._date_rule.includes(day):
                midnight = datetime.combine(day, time())
                for offset in self._time_rule.times_of_day:
                    yield midnight + offset
            day += timedelta(days=1)

    def start(self, not_before: datetime) -> None:
        """Skip every occurrence before `not_before` (LEAN's SkipEventsUntil)."""
        self._times = self._generate(not_before.date())
        self.advance()
        while self.next_event_time is not None and self.next_event_time < not_before:
            self.advance()

    def advance(self) -> None:
        assert self._times is not None
        self.next_event_time = next(self._times)


class ScheduleManager:
    """`algorithm.schedule`: `on(date_rule, time_rule, callback)` or `on(name, date_rule, time_rule, callback)`."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._heap: List[Tuple[datetime, int, ScheduledEvent]] = []
        self._created = 0
        self.events: List[ScheduledEvent] = []

    def on(self, *args: object) -> ScheduledEvent:
        if isinstance(args[0], str):
            name, date_rule, time_rule, callback = args
        else:
            date_rule, time_rule, callback = args
            name = None
        assert isinstance(date_rule, DateRule) and isinstance(time_rule, TimeRule) and callable(callback)
        event = ScheduledEvent(str(name or f"{date_rule.name}: {time_rule.name}"), date_rule, time_rule, callback)
        event.start(self._now())
        self._push(event)
        self.events.append(event)
        return event

    def remove(self, event: ScheduledEvent) -> None:
        event.enabled = False

    def skip_until(self, moment: datetime) -> None:
        """Drop occurrences before `moment` (the start of the run once initialize has finished)."""
        for _, _, event in self._heap:
            while event.next_event_time is not None and event.next_event_time < moment:
                event.advance()
        self._heap = [(event.next_event_time, order, event) for _, order, event in self._heap]  # type: ignore[misc]
        heapq.heapify(self._heap)

    def _push(self, event: ScheduledEvent, order: Optional[int] = None) -> None:
        if order is None:
            order = self._created
            self._created += 1
        assert event.next_event_time is not None
        heapq.heappush(self._heap, (event.next_event_time, order, event))

    def fire_due(self, until: datetime, inclusive: bool, set_time: Callable[[datetime], None]) -> int:
        """Fire events before `until` (or at it when inclusive) in time order, ties by creation order, setting
        the algorithm time to each event's time first. A callback exception becomes AlgorithmRuntimeError."""
        fired = 0
        while self._heap:
            when, order, event = self._heap[0]
            if when > until or (when == until and not inclusive):
                break
            heapq.heappop(self._heap)
            event.advance()
            self._push(event, order)
            if not event.enabled:
                continue
            set_time(when)
            try:
                event.callback()
            except Exception as error:  # SimulatedCrash is a BaseException and passes through
                raise AlgorithmRuntimeError(f"scheduled event {event.name}", error) from error
            fired += 1
        return fired
