"""The console's periodic jobs: purge what is past the retention period, regroup knowledge gaps.

Periodic procrastinate tasks with a queueing lock, like the housekeeping in bots/worker.py: with any
number of workers each runs once per period (procrastinate records the periodic defer per
timestamp, and the lock keeps a second copy from queueing while one waits).
"""
from __future__ import annotations

import logging

import procrastinate
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.console.digest import Sender, send_due
from core.console.gaps import refresh_gaps
from core.console.privacy import purge_expired
from core.storage.timeouts import Work, database_work
from core.search.embeddings import Embedder
from core.storage.models import Collection

log = logging.getLogger(__name__)

PURGE_TASK = "docrag.purge_expired_questions"
GAPS_TASK = "docrag.refresh_knowledge_gaps"
DIGEST_TASK = "docrag.send_weekly_digests"


def register_console_tasks(
    app: procrastinate.App, sessions: sessionmaker[Session], embedder: Embedder, retention_days: int,
    digest: Sender | None = None,
) -> None:
    @app.periodic(cron="37 3 * * *", periodic_id="daily")
    @app.task(name=PURGE_TASK, queueing_lock=PURGE_TASK)
    def purge_expired_questions(timestamp: int) -> None:
        with database_work(Work.INGESTION):  # a long, batched delete: the generous time limits
            purged = purge_expired(sessions, retention_days=retention_days)
        log.info("jobs.purged_questions messages=%s traces=%s conversations=%s",
                 purged.messages, purged.traces, purged.conversations)

    @app.periodic(cron="7 * * * *", periodic_id="hourly")
    @app.task(name=GAPS_TASK, queueing_lock=GAPS_TASK)
    def refresh_knowledge_gaps(timestamp: int) -> None:
        refresh_all_gaps(sessions, embedder)

    # Mondays from 09:00 UTC, hourly until midnight: a channel already sent is skipped
    # (claimed per week), one whose send failed, or that subscribed since, gets it.
    @app.periodic(cron="0 9-23 * * 1", periodic_id="weekly")
    @app.task(name=DIGEST_TASK, queueing_lock=DIGEST_TASK)
    def send_weekly_digests(timestamp: int) -> None:
        if digest is not None:
            sent = send_due(sessions, digest)
            log.info("jobs.sent_digests count=%s", sent)


def refresh_all_gaps(sessions: sessionmaker[Session], embedder: Embedder) -> dict[str, int]:
    """Regroup every collection that uses this process's embedder; {collection: gap questions}."""
    with sessions() as session:
        collections = session.execute(
            sa.select(Collection.id, Collection.name).where(Collection.embedder == embedder.name)
        ).all()
    found = {}
    for row in collections:
        with database_work(Work.INGESTION):
            found[row.name] = refresh_gaps(sessions, embedder, row.id)
    return found
