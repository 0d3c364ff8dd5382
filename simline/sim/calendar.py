"""Working time of the line as a weekly schedule of working intervals, answered by bisection."""

from __future__ import annotations

import bisect

from simline.scenario.line import WEEKDAYS, Calendar

__all__ = ["WEEK", "WorkCalendar"]

DAY = 1440.0
WEEK = 7 * DAY


class WorkCalendar:
    """When the line works. Time 0 is Monday 00:00; times are minutes.

    ``None`` as the scenario calendar means the line always works.
    """

    def __init__(self, calendar: Calendar | None) -> None:
        self.always_on = calendar is None
        self._edges: list[float] = []
        if calendar is None:
            return
        intervals: list[tuple[float, float]] = []
        breaks = [b.minutes() for b in calendar.breaks]
        for day in calendar.working_days:
            offset = WEEKDAYS.index(day) * DAY
            for shift in calendar.shifts:
                start, end = shift.minutes()
                pieces = [(float(start), float(end))]
                for b0, b1 in breaks:
                    for shift_day in (0, 1440):  # a break after midnight inside a night shift
                        pieces = [p for s0, s1 in pieces for p in _cut(s0, s1, b0 + shift_day, b1 + shift_day)]
                intervals += [(offset + s0, offset + s1) for s0, s1 in pieces]
        # unroll one extra week so that intervals past Sunday midnight wrap correctly
        unrolled = sorted((s + k * WEEK, e + k * WEEK) for s, e in intervals for k in (-1, 0, 1))
        merged: list[list[float]] = []
        for s, e in unrolled:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self._edges = [x for pair in merged for x in pair]
        self.working_per_week = sum(min(e, WEEK) - max(s, 0.0) for s, e in merged if e > 0 and s < WEEK)

    def state_at(self, now: float) -> tuple[bool, float]:
        """Whether the line works at ``now`` and when that next changes (``inf`` for an always-on line)."""
        if self.always_on:
            return True, float("inf")
        week = (now // WEEK) * WEEK
        t = now - week
        i = bisect.bisect_right(self._edges, t)
        working = i % 2 == 1
        return working, week + self._edges[i]

    def share_working(self) -> float:
        """Fraction of the week that is working time."""
        return 1.0 if self.always_on else self.working_per_week / WEEK


def _cut(s0: float, s1: float, b0: float, b1: float) -> list[tuple[float, float]]:
    out = []
    if b0 > s0:
        out.append((s0, min(s1, b0)))
    if b1 < s1:
        out.append((max(s0, b1), s1))
    return [(a, b) for a, b in out if b > a]
