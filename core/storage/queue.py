"""Durable background work on the same PostgreSQL (procrastinate).

Adapters register their tasks on the app this module builds; `docrag worker` processes (or, on
the embedded default, a thread inside the web process) run them. A job survives a crash: it
stays in the table until a worker finishes it, and jobs held by a worker that stopped sending
heartbeats are put back in the queue when any worker starts.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import procrastinate

from core.storage.faults import DatabaseUnavailable

log = logging.getLogger(__name__)

QUEUE_ANSWERS = "answers"
QUEUE_INGEST = "ingest"
# A worker that has not sent a heartbeat for this long is presumed dead.
STALLED_AFTER_S = 60


def database_retry() -> procrastinate.RetryStrategy:
    """A job that met an unavailable database runs again after 2, 4, 8, 16, 32 and 64 s, then fails."""
    import procrastinate

    return procrastinate.RetryStrategy(max_attempts=6, exponential_wait=2, retry_exceptions={DatabaseUnavailable})


def build_job_app(conninfo: str) -> procrastinate.App:
    import procrastinate  # imported when a process builds its queue, not by everything that names one

    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))


async def requeue_stalled_jobs(app: procrastinate.App) -> int:
    """Put back jobs that a dead worker was holding; returns how many."""
    stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_S))
    for job in stalled:
        await app.job_manager.retry_job(job)
    await app.job_manager.prune_stalled_workers(STALLED_AFTER_S)
    if stalled:
        log.warning("jobs.requeued_stalled count=%s", len(stalled))
    return len(stalled)


async def run_worker(app: procrastinate.App, *, concurrency: int = 4, stop: asyncio.Event | None = None) -> None:
    async with app.open_async():
        await requeue_stalled_jobs(app)
        worker = asyncio.create_task(
            app.run_worker_async(
                concurrency=concurrency,
                install_signal_handlers=stop is None,
                update_heartbeat_interval=10,
                stalled_worker_timeout=STALLED_AFTER_S,
            )
        )
        if stop is None:
            await worker
            return
        await stop.wait()
        worker.cancel()
        try:
            await worker
        except asyncio.CancelledError:
            pass


class BackgroundWorker:
    """Runs a worker on its own event loop in a daemon thread (the embedded default)."""

    def __init__(self, app: procrastinate.App, *, concurrency: int = 4) -> None:
        self.app = app
        self.concurrency = concurrency
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="docrag-worker", daemon=True)

    def start(self) -> "BackgroundWorker":
        self._thread.start()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        try:
            self._loop.run_until_complete(run_worker(self.app, concurrency=self.concurrency, stop=self._stop))
        except Exception:  # a dead worker thread must be visible in the logs
            log.exception("jobs.worker_crashed")

    def stop(self, timeout: float = 10) -> None:
        if self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
