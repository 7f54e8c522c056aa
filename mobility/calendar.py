"""Calendar arithmetic on a handful of dates (a month, a period's first day), shared by the gold build and
the recommender; columns of data use the Spark expressions of ``mobility.gold.flows`` and
``mobility.gold.market``."""

from __future__ import annotations

from datetime import date


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s (of a handful of calendar dates, not data)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_start_date(day: date, period: str) -> date:
    """``mobility.gold.flows.period_start`` of one calendar date."""
    first_month = {"month": day.month, "quarter": 3 * ((day.month - 1) // 3) + 1, "year": 1}[period]
    return date(day.year, first_month, 1)
