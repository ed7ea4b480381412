"""The ``worker`` process: runs background jobs (Slack answers, ingestion, housekeeping).

    python -m bots.worker [--concurrency N] [--nice N]      (or: docrag worker)

Any number of workers can run against one database; each job runs once (procrastinate locks the
row), and a job held by a worker that died is put back in the queue by the next worker to start.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os

import procrastinate

from adapters.slack.afterack import AfterAck
from adapters.slack.app import oauth_enabled, token_source
from adapters.slack.clients import SlackClients
from adapters.slack.services import SlackServices
from adapters.slack.tasks import register_tasks as register_slack_tasks
from bots.logs import configure_logging
from bots.wiring import Container, build_container
from core.config import Settings, load_settings
from core.storage.timeouts import Work, database_work
from core.dedupe import prune
from core.ingest.jobs import IngestRunner, register_ingest_task, requeue_orphans
from core.storage.queue import build_job_app, run_worker
from core.tenancy.ratelimit import RateLimiter
from core.search.term_stats import refresh_stale_postings
from core.sources.jobs import register_source_tasks

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4
PRUNE_TASK = "docrag.prune_processed_events"
PRUNE_RATE_LIMITS_TASK = "docrag.prune_rate_limits"
REMOVE_JOBS_TASK = "docrag.remove_finished_jobs"
REQUEUE_INGEST_TASK = "docrag.requeue_ingest_jobs"
REFRESH_POSTINGS_TASK = "docrag.refresh_term_postings"
KEEP_FINISHED_JOBS_H = 72  # failed jobs are kept: they are worth a look


def open_job_queue(container: Container) -> procrastinate.App:
    """A job app opened for deferring from ordinary (synchronous) code in this process."""
    jobs = build_job_app(container.database.conninfo)
    jobs.open()
    return jobs


def build_slack_services(container: Container, jobs: procrastinate.App) -> SlackServices | None:
    """Slack collaborators, or None when no Slack workspace is configured."""
    settings = container.settings
    if settings.slack_bot_token is None and not oauth_enabled(settings):
        return None
    return SlackServices(
        engine=container.engine,
        sessions=container.database.sessions,
        jobs=jobs,
        clients=SlackClients(token_source(settings, container.database.engine), settings.slack_api_url),
        after_ack=AfterAck(),
    )


def build_worker_app(container: Container, jobs: procrastinate.App, slack: SlackServices | None) -> procrastinate.App:
    """A job app with every DocRag task registered, for a worker to run; ``jobs`` is the opened app
    the tasks defer follow-up jobs with."""
    app = build_job_app(container.database.conninfo)
    if slack is not None:
        register_slack_tasks(app, slack)
    register_ingest_task(app, IngestRunner(container.database.sessions, container.ingestor))
    register_source_tasks(app, container.syncer, jobs)
    _register_housekeeping(app, container, jobs)
    return app


def _register_housekeeping(app: procrastinate.App, container: Container, jobs: procrastinate.App) -> None:
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


def run(settings: Settings, *, concurrency: int = DEFAULT_CONCURRENCY, nice: int = 0) -> None:
    if nice:
        # On a machine shared with the web process: answers may wait a little, acknowledgements must not.
        os.nice(nice)
    container = build_container(settings, process="worker")
    jobs = open_job_queue(container)
    try:
        worker_app = build_worker_app(container, jobs, build_slack_services(container, jobs))
        log.info("worker.started concurrency=%s", concurrency)
        asyncio.run(run_worker(worker_app, concurrency=concurrency))
    finally:
        jobs.close()
        container.database.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bots.worker", description="Run DocRag's background job workers.")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="jobs run at once")
    parser.add_argument("--nice", type=int, default=0, help="lower CPU priority (e.g. 10) next to a web process")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    run(settings, concurrency=args.concurrency, nice=args.nice)


if __name__ == "__main__":
    main()
