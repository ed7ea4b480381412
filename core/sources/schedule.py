"""When a source syncs next: an interval ("30m", "6h", "1d") or a five-field cron line, and a
backoff after failed syncs (doubling from the interval, capped)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from core.errors import InvalidInput

_INTERVAL = re.compile(r"^\s*(?:every\s+)?(\d+)\s*([smhd])\s*$", re.I)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_S = 60
FIRST_BACKOFF_S = 60  # a failed sync is tried again after 1 min, then 2, 4, 8...


def validate_schedule(schedule: str | None) -> str | None:
    """The schedule, normalised; InvalidInput for one that is neither an interval nor a cron line."""
    if schedule is None or not schedule.strip():
        return None
    schedule = " ".join(schedule.split())
    seconds = interval_seconds(schedule)
    if seconds is not None:
        if seconds < MIN_INTERVAL_S:
            raise InvalidInput(f"schedule {schedule!r}: the shortest interval is {MIN_INTERVAL_S} s")
        return schedule
    from croniter import croniter  # procrastinate's own dependency

    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        raise InvalidInput(
            f"schedule {schedule!r} is neither an interval (30m, 6h, 1d) nor a cron line (*/15 * * * *)"
        )
    return schedule


def interval_seconds(schedule: str) -> int | None:
    match = _INTERVAL.match(schedule)
    return int(match.group(1)) * _UNIT_S[match.group(2).lower()] if match else None


def next_run(schedule: str | None, after: datetime) -> datetime | None:
    """The first scheduled time after ``after``, or None for a source synced by hand only."""
    if not schedule:
        return None
    seconds = interval_seconds(schedule)
    if seconds is not None:
        return after + timedelta(seconds=seconds)
    from croniter import croniter

    return croniter(schedule, after).get_next(datetime)


def retry_after_failure(schedule: str | None, failures: int, now: datetime, *, max_backoff_s: int) -> datetime | None:
    """When to try again after ``failures`` consecutive failed syncs: 1 min, 2, 4, ... doubling up
    to ``max_backoff_s``. None for a source synced by hand only (its operator sees the error)."""
    if not schedule:
        return None
    return now + timedelta(seconds=min(FIRST_BACKOFF_S * 2 ** max(failures - 1, 0), max_backoff_s))
