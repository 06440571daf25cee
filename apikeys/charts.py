"""The key page's usage chart: bar geometry for an inline SVG, computed on the server.

No script and no style attribute (the CSP allows neither): the template draws plain <rect>s
from these numbers, and colours come from the stylesheet. The SVG stretches to the page's width,
so it holds no text: the dates and the y-axis maximum (a round number at or above the busiest
day) are HTML beside it, and every day's count is in a table too.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

WIDTH = 600
HEIGHT = 140
TOP = 1  # the y-axis maximum's gridline
BOTTOM = 1  # the baseline
GAP = 4


def axis_maximum(peak: int) -> int:
    """The y-axis maximum: the smallest of 1, 2, 5, 10, 20, 50... that is at least ``peak`` (and at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= peak:
                return step * factor
        step *= 10


@dataclass(frozen=True)
class Bar:
    day: datetime.date
    uses: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class UsageChart:
    bars: list[Bar]
    total: int
    peak: int
    peak_day: datetime.date | None
    axis_max: int = 1
    width: int = WIDTH
    height: int = HEIGHT
    baseline: int = HEIGHT - BOTTOM
    top: int = TOP

    @property
    def axis_middle(self) -> int | None:
        """The y-axis's middle value, for its gridline's label; None when it is not a whole number of requests."""
        return self.axis_max // 2 if self.axis_max % 2 == 0 else None

    @property
    def middle_y(self) -> float:
        return (self.top + self.baseline) / 2

    @property
    def first_day(self) -> datetime.date:
        return self.bars[0].day

    @property
    def last_day(self) -> datetime.date:
        return self.bars[-1].day

    @property
    def summary(self) -> str:
        days = len(self.bars)
        if not self.total:
            return f"No requests in the last {days} days."
        return (f"{self.total} request{'s' if self.total != 1 else ''} in the last {days} days; "
                f"at most {self.peak} on {self.peak_day:%b %-d}.")


def usage_chart(daily: list[tuple[datetime.date, int]]) -> UsageChart:
    """Lay out one bar per day (oldest left), scaled to the y-axis maximum; a day with uses shows at least 2px."""
    peak = max((uses for _, uses in daily), default=0)
    peak_day = next((day for day, uses in daily if uses == peak), None) if peak else None
    axis_max = axis_maximum(peak)
    plot_height = HEIGHT - TOP - BOTTOM
    slot = WIDTH / max(len(daily), 1)
    bars = []
    for index, (day, uses) in enumerate(daily):
        height = max(2.0, plot_height * uses / axis_max) if uses else 0.0
        bars.append(Bar(day=day, uses=uses, x=round(index * slot + GAP / 2, 2), y=round(HEIGHT - BOTTOM - height, 2),
                        width=round(slot - GAP, 2), height=round(height, 2)))
    return UsageChart(bars=bars, total=sum(uses for _, uses in daily), peak=peak, peak_day=peak_day, axis_max=axis_max)
