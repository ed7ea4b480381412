"""Periodic jobs that keep the tables from growing without end, and requeue lost ingest jobs."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import procrastinate

from core.storage.timeouts import Work, database_work
from core.ingest.jobs import requeue_orphans
from core.questions.claims import prune
from core.tenancy.ratelimit import RateLimiter
from core.search.term_stats import refresh_stale_postings

if TYPE_CHECKING:
    from bots.wiring import Container

log = logging.getLogger(__name__)

PRUNE_TASK = "docrag.prune_processed_events"
PRUNE_RATE_LIMITS_TASK = "docrag.prune_rate_limits"
REMOVE_JOBS_TASK = "docrag.remove_finished_jobs"
REQUEUE_INGEST_TASK = "docrag.requeue_ingest_jobs"
REFRESH_POSTINGS_TASK = "docrag.refresh_term_postings"
KEEP_FINISHED_JOBS_H = 72  # failed jobs are kept: they are worth a look


def register_housekeeping(app: procrastinate.App, container: Container, jobs: procrastinate.App) -> None:
    """Keep the de-duplication, rate-limit and job tables from growing without end, and queue
    again the ingestion jobs a dying web process saved but never queued."""

    @app.periodic(cron="* * * * *", periodic_id="minutely")
    @app.task(name=REQUEUE_INGEST_TASK, queueing_lock=REQUEUE_INGEST_TASK)
    def requeue_ingest_jobs(timestamp: int) -> None:
        requeue_orphans(container.database.sessions, jobs)

    # Postings too large to build inside an ingest (see core/search/term_stats.py) are built here;
    # until then the collection's searches take the path without postings.
    @app.periodic(cron="* * * * *", periodic_id="minutely")
    @app.task(name=REFRESH_POSTINGS_TASK, queueing_lock=REFRESH_POSTINGS_TASK)
    def refresh_term_postings(timestamp: int) -> None:
        with database_work(Work.INGESTION):
            rebuilt = refresh_stale_postings(container.database.sessions)
        if rebuilt:
            log.info("jobs.rebuilt_term_postings collections=%s", rebuilt)

    @app.periodic(cron="17 * * * *", periodic_id="hourly")
    @app.task(name=PRUNE_TASK, queueing_lock=PRUNE_TASK)
    def prune_processed_events(timestamp: int) -> None:
        removed = prune(container.database.sessions)
        log.info("jobs.pruned_processed_events count=%s", removed)

    @app.periodic(cron="27 * * * *", periodic_id="hourly")
    @app.task(name=PRUNE_RATE_LIMITS_TASK, queueing_lock=PRUNE_RATE_LIMITS_TASK)
    def prune_rate_limits(timestamp: int) -> None:
        removed = RateLimiter(container.database.sessions).cleanup()
        log.info("jobs.pruned_rate_limit_windows count=%s", removed)

    @app.periodic(cron="47 * * * *", periodic_id="hourly")
    @app.task(name=REMOVE_JOBS_TASK, queueing_lock=REMOVE_JOBS_TASK, pass_context=True)
    async def remove_finished_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
        await context.app.job_manager.delete_old_jobs(nb_hours=KEEP_FINISHED_JOBS_H)
