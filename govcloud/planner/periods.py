"""Report periods: ``2026-11`` (a month) or ``2026-09..2026-11`` (whole months, inclusive), in UTC.

Pure: the caller passes the text and gets half-open ``[start, end)`` bounds; a period that cannot be
read is a ConfigError naming the flag (``--period``), what was found and what is expected — exit 2.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass

from govcloud.errors import ConfigError, Problem

_MONTH = re.compile(r"(\d{4})-(\d{2})")
UTC = datetime.UTC


@dataclass(frozen=True)
class Period:
    """Whole months ``[start, end)``; ``label`` as the user wrote it, normalised."""

    start: datetime.datetime
    end: datetime.datetime
    label: str

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    def months(self) -> list[Period]:
        """One period per month, in order (a report's per-month rows)."""
        found, at = [], self.start
        while at < self.end:
            following = _next_month(at)
            found.append(Period(at, following, at.strftime("%Y-%m")))
            at = following
        return found

    def days(self) -> list[datetime.datetime]:
        """Midnight of every day in the period (the charts' x axis)."""
        count = (self.end - self.start).days
        return [self.start + datetime.timedelta(days=i) for i in range(count)]


def _next_month(at: datetime.datetime) -> datetime.datetime:
    return at.replace(year=at.year + 1, month=1) if at.month == 12 else at.replace(month=at.month + 1)


def _bad(text: str, expected: str) -> ConfigError:
    return ConfigError([Problem(file="<command line>", line=0, key="--period", found=repr(text), expected=expected, message="bad period")])


def _month(text: str, whole: str) -> datetime.datetime:
    match = _MONTH.fullmatch(text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise _bad(whole, "a month YYYY-MM (2026-11) or a range YYYY-MM..YYYY-MM, from 2000 on")
    return datetime.datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)


def parse_period(text: str) -> Period:
    """``2026-11`` or ``2026-09..2026-11``; anything else, or a range that runs backwards, is refused."""
    first, sep, last = text.partition("..")
    start = _month(first, text)
    final = _month(last, text) if sep else start
    if final < start:
        raise _bad(text, "a range whose last month is not before its first")
    if (final.year - start.year) * 12 + final.month - start.month >= 36:
        raise _bad(text, "at most 36 months")
    end = _next_month(final)
    return Period(start, end, start.strftime("%Y-%m") + (f"..{final.strftime('%Y-%m')}" if sep else ""))


def previous_month(today: datetime.date) -> Period:
    """The default period: the last whole month before ``today`` (what the office hands in)."""
    first = datetime.datetime(today.year, today.month, 1, tzinfo=UTC)
    start = first.replace(year=first.year - 1, month=12) if first.month == 1 else first.replace(month=first.month - 1)
    return Period(start, first, start.strftime("%Y-%m"))


@functools.lru_cache(maxsize=65536)
def seconds(iso: str) -> float:
    """Epoch seconds of a stored timestamp (naive ones are UTC, as the store writes them). Cached: a
    sample writes thousands of points with one timestamp."""
    at = datetime.datetime.fromisoformat(iso)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()
