"""Exactly-once bookkeeping in PostgreSQL: the first process to claim a key wins.

Platforms deliver the same thing more than once (Slack retries, an @mention arriving both as a
mention and as a message, a job that runs again after a crash). The primary key of
``processed_events`` makes a claim atomic across threads and processes, so "do it once" holds
however many web or worker processes run.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from core.storage.models import ProcessedEvent

# Long enough to outlive every redelivery (Slack retries for minutes, stalled jobs come back within one).
RETENTION = timedelta(days=7)


def claim(
    sessions: sessionmaker[Session], platform: str, key: str, *more_keys: str, wait_for_flush: bool = True
) -> bool:
    """Record every key; True only when none had been recorded before (the caller goes ahead).

    Several keys are claimed in one statement so that one delivery known by two names (an event
    id and a channel + ts) is refused when either name was seen already. Concurrent claimers of
    a key serialise on its primary key: exactly one of them inserts it.

    ``wait_for_flush=False`` skips waiting for the disk: for a caller whose next step is a durable
    write anyway (it flushes the log up to and including this claim), it saves one flush.
    """
    keys = list(dict.fromkeys((key, *more_keys)))
    with sessions.begin() as session:
        if not wait_for_flush:
            session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
        inserted = session.scalars(
            insert(ProcessedEvent)
            .values([{"platform": platform, "key": one} for one in keys])
            .on_conflict_do_nothing(index_elements=[ProcessedEvent.platform, ProcessedEvent.key])
            .returning(ProcessedEvent.key)
        ).all()
    return len(inserted) == len(keys)


class AlreadyClaimed(Exception):
    """The key was claimed by someone else first."""


def claim_in(session: Session, platform: str, key: str) -> bool:
    """Claim ``key`` inside the caller's transaction (it commits or rolls back with the rest)."""
    inserted = session.scalars(
        insert(ProcessedEvent).values(platform=platform, key=key)
        .on_conflict_do_nothing(index_elements=[ProcessedEvent.platform, ProcessedEvent.key])
        .returning(ProcessedEvent.key)
    ).all()
    return bool(inserted)


def is_claimed(sessions: sessionmaker[Session], platform: str, key: str) -> bool:
    with sessions() as session:
        found = session.scalar(
            sa.select(ProcessedEvent.key).where(ProcessedEvent.platform == platform, ProcessedEvent.key == key)
        )
    return found is not None


def release(sessions: sessionmaker[Session], platform: str, *keys: str) -> None:
    """Forget claims whose work failed before it had any effect, so a redelivery can do it."""
    with sessions.begin() as session:
        session.execute(
            sa.delete(ProcessedEvent).where(ProcessedEvent.platform == platform, ProcessedEvent.key.in_(keys))
        )


def prune(sessions: sessionmaker[Session], *, older_than: timedelta = RETENTION, now: datetime | None = None) -> int:
    """Delete claims older than ``older_than``; returns how many."""
    cutoff = (now or datetime.now(timezone.utc)) - older_than
    with sessions.begin() as session:
        result = session.execute(sa.delete(ProcessedEvent).where(ProcessedEvent.created_at < cutoff))
    return result.rowcount or 0
