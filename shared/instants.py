"""Instants as the services exchange them, and the campaign's calendar day.

Event payloads carry instants as ISO 8601 strings (``Z`` or an offset); SQLite hands naive UTC back
where PostgreSQL hands aware values. Days are counted in Asia/Ho_Chi_Minh (SPEC: a phase's dates, a
submission's day), which has been UTC+7 without daylight saving since 1975.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken as UTC (what SQLite stores)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_instant(value: Any) -> datetime:
    """A required instant (a datetime, or an ISO 8601 string), in UTC; ValueError when there is none."""
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def parse_optional_instant(value: Any) -> datetime | None:
    """An instant a payload may leave out or garble: None then, so what was known before is kept."""
    if value is None or value == "":
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None


def local_day(instant: datetime) -> date:
    """The calendar day of ``instant`` in Asia/Ho_Chi_Minh (a naive instant is UTC)."""
    return as_utc(instant).astimezone(LOCAL_TZ).date()
