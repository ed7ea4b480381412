"""Source syncs as durable jobs on the queue, and the periodic task that starts scheduled ones.

One sync per source at a time across every worker: the task's ``lock`` (procrastinate runs jobs
sharing a lock one after another) and ``queueing_lock`` (at most one waiting sync per source),
plus the syncer's own advisory lock, which also keeps a `docrag source sync` in a terminal from
running beside a worker's. A worker killed mid-sync leaves its job to be retried by the next
worker that starts (core/storage/queue.py); that sync starts over from the last saved state, and the
pipeline's content hashes make the documents already stored cost nothing.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import procrastinate
import sqlalchemy as sa
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.orm import Session, sessionmaker

from core.storage.timeouts import Work, database_work
from core.storage.queue import QUEUE_INGEST, database_retry
from core.storage.models import Source
from core.sources.sync import SourceSyncer

log = logging.getLogger(__name__)

SYNC_TASK = "docrag.sync_source"
SCHEDULE_TASK = "docrag.schedule_source_syncs"


def defer_sync(jobs: procrastinate.App, source_id: int) -> bool:
    """Queue a sync of the source; False when one is already waiting."""
    name = f"source-{source_id}"
    try:
        jobs.configure_task(SYNC_TASK, queue=QUEUE_INGEST, lock=name, queueing_lock=name).defer(source_id=source_id)
    except AlreadyEnqueued:
        return False
    return True


def due_sources(sessions: sessionmaker[Session], *, now: datetime | None = None, limit: int = 500) -> list[int]:
    with sessions() as session:
        return list(session.scalars(
            sa.select(Source.id)
            .where(Source.schedule.is_not(None), Source.next_sync_at <= (now or datetime.now(timezone.utc)))
            .order_by(Source.next_sync_at)
            .limit(limit)
        ))


def queue_due_syncs(sessions: sessionmaker[Session], jobs: procrastinate.App, *, now: datetime | None = None) -> int:
    """Queue a sync of every scheduled source whose time has come; returns how many were queued."""
    queued = sum(defer_sync(jobs, source_id) for source_id in due_sources(sessions, now=now))
    if queued:
        log.info("sources.queued_syncs count=%s", queued)
    return queued


def register_source_tasks(app: procrastinate.App, syncer: SourceSyncer, jobs: procrastinate.App) -> None:
    """The sync task, and the minutely scheduler, on the app a worker runs."""

    @app.task(name=SYNC_TASK, queue=QUEUE_INGEST, retry=database_retry())
    def sync_source(source_id: int) -> None:
        with database_work(Work.INGESTION):
            result = syncer.sync(source_id)
        log.info("sources.sync_job source_id=%s status=%s", source_id, result.status)

    @app.periodic(cron="* * * * *", periodic_id="minutely")
    @app.task(name=SCHEDULE_TASK, queueing_lock=SCHEDULE_TASK)
    def schedule_source_syncs(timestamp: int) -> None:
        queue_due_syncs(syncer.sessions, jobs)
