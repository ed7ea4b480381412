"""Durable background work on the same PostgreSQL (procrastinate).

Adapters register their tasks on the app this module builds; `docrag worker` processes (or, on
the embedded default, a thread inside the web process) run them. A job survives a crash: it
stays in the table until a worker finishes it, and jobs held by a worker that stopped sending
heartbeats are put back in the queue by any live worker within seconds (``watch``: every
WATCH_INTERVAL_S, not only when a worker starts).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

if TYPE_CHECKING:
    import procrastinate

from core.storage.faults import DatabaseUnavailable

log = logging.getLogger(__name__)

QUEUE_ANSWERS = "answers"
QUEUE_INGEST = "ingest"
# Workers beat every HEARTBEAT_S; one silent for STALLED_AFTER_S is presumed dead and its jobs
# are put back. A live worker that misses a few beats (a loaded machine) only makes a job run
# twice, which every DocRag job survives (answers and deliveries are idempotent).
HEARTBEAT_S = 2
STALLED_AFTER_S = 10
WATCH_INTERVAL_S = 3
# Job work (answers above all) runs at this niceness in a process that also serves requests (the
# embedded default): request threads stay at 0, so the kernel gives an ack the CPU first and an
# answer waits a little instead of the ack (see docs/question-lifecycle.md, "Fast acks").
BACKGROUND_NICENESS = 10


@contextlib.contextmanager
def queue_reachable() -> Iterator[None]:
    """Raise :class:`DatabaseUnavailable` when queueing a job fails because PostgreSQL is not
    there: the job queue has its own driver (psycopg 3), which SQLAlchemy's fault translation
    (core/storage/faults.py) never sees, and a caller owes its user the same 503 or apology."""
    from procrastinate.exceptions import ConnectorException

    try:
        yield
    except ConnectorException as error:
        cause = error.__cause__
        reason = (str(cause).strip().splitlines() or ["no detail"])[0] if cause else "the job queue failed"
        unavailable = DatabaseUnavailable(f"the job queue could not be reached ({reason})", orig=cause)
        log.warning("db.unavailable reason=%s reference=%s", unavailable.reason, unavailable.reference)
        raise unavailable from error


def lower_this_thread(niceness: int = BACKGROUND_NICENESS) -> int:
    """Run the calling thread (and the threads it starts) at ``niceness``; returns the niceness
    it has. Linux sets a thread's priority on its own thread id; raising one's own niceness needs
    no privilege. Never raises: a platform that refuses leaves the thread as it was."""
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
        return os.getpriority(os.PRIO_PROCESS, tid)
    except (AttributeError, OSError):
        log.warning("jobs.cannot_lower_priority niceness=%s", niceness)
        return 0


def thread_niceness() -> int:
    """The calling thread's niceness (tests, logs)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


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


async def run_worker(
    app: procrastinate.App,
    *,
    concurrency: int = 4,
    stop: asyncio.Event | None = None,
    sweeps: Sequence[Callable[[], object]] = (),
) -> None:
    """Run jobs until stopped; meanwhile ``watch`` puts back stalled jobs and runs ``sweeps``."""
    async with app.open_async():
        await requeue_stalled_jobs(app)
        watcher = asyncio.create_task(watch(app, sweeps))
        worker = asyncio.create_task(
            app.run_worker_async(
                concurrency=concurrency,
                install_signal_handlers=stop is None,
                update_heartbeat_interval=HEARTBEAT_S,
                stalled_worker_timeout=STALLED_AFTER_S,
            )
        )
        try:
            if stop is None:
                await worker
                return
            await stop.wait()
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
        finally:
            watcher.cancel()


async def watch(app: procrastinate.App, sweeps: Sequence[Callable[[], object]] = ()) -> None:
    """Every WATCH_INTERVAL_S: put back the jobs of dead workers, then run each sweep (in a thread:
    they are synchronous database work)."""
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        try:
            await requeue_stalled_jobs(app)
            for sweep in sweeps:
                await asyncio.to_thread(sweep)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be down for a while: try again at the next tick
            log.warning("jobs.watch_failed", exc_info=True)


class BackgroundWorker:
    """Runs a worker on its own event loop in a daemon thread (the embedded default)."""

    def __init__(
        self, app: procrastinate.App, *, concurrency: int = 4, sweeps: Sequence[Callable[[], object]] = ()
    ) -> None:
        self.app = app
        self.concurrency = concurrency
        self.sweeps = sweeps
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="docrag-worker", daemon=True)

    def start(self) -> "BackgroundWorker":
        self._thread.start()
        return self

    def _run(self) -> None:
        lower_this_thread()  # the loop and every job: below the request threads of this process
        self._loop.set_default_executor(  # where procrastinate runs synchronous jobs (answers)
            ThreadPoolExecutor(thread_name_prefix="docrag-job", initializer=lower_this_thread)
        )
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        try:
            self._loop.run_until_complete(run_worker(self.app, concurrency=self.concurrency, stop=self._stop, sweeps=self.sweeps))
        except Exception:  # a dead worker thread must be visible in the logs
            log.exception("jobs.worker_crashed")

    def stop(self, timeout: float = 10) -> None:
        if self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
