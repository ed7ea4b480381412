"""The ``worker`` process: runs background jobs (answers for every chat platform, ingestion, housekeeping).

    python -m bots.worker [--concurrency N] [--nice N]      (or: docrag worker)

Any number of workers can run against one database; each job runs once (procrastinate locks the
row). Workers send heartbeats; a job held by a worker that stopped sending them is put back in
the queue by any live worker within seconds (core/storage/queue.py), and questions whose job was never
queued are found by the lifecycle's sweep (core/questions/lifecycle.py).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os

from bots.logs import configure_logging
from bots.wiring import build_container, build_slack_services, build_worker_app, open_job_queue
from core.config import Settings, load_settings
from core.storage.queue import run_worker

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 4


def run(settings: Settings, *, concurrency: int = DEFAULT_CONCURRENCY, nice: int = 0) -> None:
    if nice:
        # On a machine shared with the web process: answers may wait a little, acknowledgements must not.
        os.nice(nice)
    container = build_container(settings, process="worker")
    jobs = open_job_queue(container)
    try:
        lifecycle = container.lifecycle(jobs)
        worker_app = build_worker_app(container, lifecycle, build_slack_services(container, lifecycle))
        log.info("worker.started concurrency=%s platforms=%s", concurrency, sorted(lifecycle.ports))
        asyncio.run(run_worker(worker_app, concurrency=concurrency, sweeps=[lifecycle.requeue_lost]))
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
