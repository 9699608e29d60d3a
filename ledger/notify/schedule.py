"""When a failed delivery is tried again: Standard Webhooks' (and Svix's) schedule, stretched to
three days. Attempt 1 is at once; after a failure, attempt n+1 waits RETRY_DELAYS[n-1]."""

from __future__ import annotations

from datetime import datetime, timedelta

RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=20),
)
ATTEMPTS = len(RETRY_DELAYS) + 1
# no attempt is made this long after the event was queued (a disabled endpoint re-enabled later)
GIVE_UP_AFTER = timedelta(days=3)


def next_attempt_at(attempt: int, failed_at: datetime, queued_at: datetime) -> datetime | None:
    """When the attempt after failed attempt `attempt` (1-based) is due, or None: no more attempts
    (the schedule is spent, or the next would be past three days from queueing)."""
    if attempt < 1 or attempt >= ATTEMPTS:
        return None
    due = failed_at + RETRY_DELAYS[attempt - 1]
    return None if due > queued_at + GIVE_UP_AFTER else due
