"""Ingestion as a background job: an upload or a URL, queued by the REST API, run by any worker.

The job's row in ``ingest_jobs`` is its public face (status, progress, result, error); the
procrastinate job only carries its id. Running a job twice is harmless: ingestion is idempotent by
content hash, and a finished job is not run again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

import procrastinate
import sqlalchemy as sa
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.orm import Session, sessionmaker

from core.storage.faults import DatabaseUnavailable
from core.storage.timeouts import Work, database_work
from core.errors import DocRagError, NotFound, UpstreamUnavailable, new_reference
from core.ingest.pipeline import Ingestor, IngestReport
from core.ingest.public_urls import check_public_url
from core.ingest.sources import SourceItem, discover
from core.storage.queue import QUEUE_INGEST, database_retry
from core.storage.models_web import IngestJob

log = logging.getLogger(__name__)

INGEST_TASK = "docrag.ingest"
UPLOAD_SCHEME = "upload:"  # an upload's document identity: upload:<file name> (re-upload replaces it)
FINISHED = ("succeeded", "failed")
REQUEUE_AFTER = timedelta(minutes=2)  # a row still "queued" this long after it was saved may have lost its job
_PROGRESS_EVERY_S = 0.5  # progress writes are throttled: one row update per half second at most


@dataclass(frozen=True)
class JobView:
    id: int
    collection: str
    kind: str
    source: str
    status: str
    done: int
    total: int | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime


class IngestJobs:
    """Submit and look up ingestion jobs (the web side)."""

    def __init__(self, sessions: sessionmaker[Session], jobs: procrastinate.App) -> None:
        self.sessions = sessions
        self.jobs = jobs

    def submit_upload(
        self, collection: str, filename: str, data: bytes, *, link: str | None = None, api_key_id: int | None = None
    ) -> JobView:
        return self._submit(IngestJob(
            collection=collection, kind="upload", source=filename, link=link, payload=data, api_key_id=api_key_id
        ))

    def submit_url(self, collection: str, url: str, *, api_key_id: int | None = None) -> JobView:
        return self._submit(IngestJob(collection=collection, kind="url", source=url, api_key_id=api_key_id))

    def get(self, job_id: int) -> JobView:
        with self.sessions() as session:
            row = session.get(IngestJob, job_id)
            if row is None:
                raise NotFound(f"No job with id {job_id}.")
            return _view(row)

    def _submit(self, row: IngestJob) -> JobView:
        with self.sessions.begin() as session:
            session.add(row)
            session.flush()
            job_id = row.id
        try:
            _defer(self.jobs, job_id)
        except Exception as exc:  # the row must not claim a job that will never run
            reference = new_reference()
            log.exception("ingest_job.defer_failed job_id=%s reference=%s", job_id, reference)
            error = f"the job queue is unavailable (reference {reference})"
            _finish(self.sessions, job_id, status="failed", error=error)
            raise UpstreamUnavailable("The job queue", str(exc), reference=reference) from None
        return self.get(job_id)


def requeue_orphans(sessions: sessionmaker[Session], jobs: procrastinate.App, *, now: datetime | None = None) -> int:
    """Queue the jobs whose row was saved but whose queue entry never was; returns how many.

    A web process that dies between saving the row and deferring the job leaves a job that would
    say "queued" for ever. A periodic task calls this; a job that is merely waiting in a busy
    queue is left alone (its queueing lock refuses a second entry).
    """
    cutoff = (now or datetime.now(timezone.utc)) - REQUEUE_AFTER
    with sessions() as session:
        ids = session.scalars(
            sa.select(IngestJob.id).where(IngestJob.status == "queued", IngestJob.created_at < cutoff).limit(500)
        ).all()
    requeued = 0
    for job_id in ids:
        try:
            _defer(jobs, job_id)
        except AlreadyEnqueued:
            continue
        requeued += 1
    if requeued:
        log.warning("ingest_job.requeued count=%s", requeued)
    return requeued


def _defer(jobs: procrastinate.App, job_id: int) -> None:
    # lock: one run at a time per job; queueing_lock: at most one waiting entry per job.
    name = f"ingest-{job_id}"
    jobs.configure_task(INGEST_TASK, queue=QUEUE_INGEST, lock=name, queueing_lock=name).defer(job_id=job_id)


class IngestRunner:
    """Run one ingestion job (the worker side)."""

    def __init__(
        self, sessions: sessionmaker[Session], ingestor: Ingestor, *, allow_private_urls: bool = False
    ) -> None:
        self.sessions = sessions
        self.ingestor = ingestor
        # Off by default: an API key holder must not make the server fetch intranet or cloud-metadata URLs.
        self.allow_private_urls = allow_private_urls

    def run(self, job_id: int) -> None:
        row = self._claim(job_id)
        if row is None:
            return
        try:
            report = self.ingestor.ingest_items(
                self._items(row), collection=row.collection, progress=_ProgressWriter(self.sessions, job_id)
            )
        except DatabaseUnavailable:  # not the job's fault: the task's retry strategy runs it again
            log.warning("ingest_job.database_unavailable job_id=%s", job_id)
            raise
        except DocRagError as exc:
            _finish(self.sessions, job_id, status="failed", error=str(exc))
            return
        except Exception:  # a bug must end in a failed job with a reference, not a job stuck in "running"
            reference = new_reference()
            log.exception("ingest_job.crashed job_id=%s reference=%s", job_id, reference)
            _finish(self.sessions, job_id, status="failed", error=f"unexpected error (reference {reference})")
            return
        _finish(self.sessions, job_id, **_outcome(report))

    def _claim(self, job_id: int) -> sa.Row[Any] | None:
        """Mark the job running; None when it is unknown or already finished (a duplicate run)."""
        with self.sessions.begin() as session:
            row = session.execute(
                sa.update(IngestJob)
                .where(IngestJob.id == job_id, IngestJob.status.not_in(FINISHED))
                .values(status="running")
                .returning(IngestJob.collection, IngestJob.kind, IngestJob.source, IngestJob.link, IngestJob.payload)
            ).first()
        if row is None:
            log.info("ingest_job.skipped job_id=%s reason=unknown or finished", job_id)
        return row

    def _items(self, row: sa.Row[Any]) -> Sequence[SourceItem]:
        if row.kind == "upload":
            return [upload_item(row.source, row.payload or b"", link=row.link)]
        guard = None if self.allow_private_urls else check_public_url
        return list(discover([row.source], http_timeout_s=self.ingestor.http_timeout_s, url_guard=guard))


def register_ingest_task(job_app: procrastinate.App, runner: IngestRunner) -> None:
    """Register the ingestion task on the app a worker runs."""

    @job_app.task(name=INGEST_TASK, queue=QUEUE_INGEST, retry=database_retry())
    def ingest(job_id: int) -> None:
        with database_work(Work.INGESTION):
            runner.run(job_id)


def upload_item(filename: str, data: bytes, *, link: str | None = None) -> SourceItem:
    uri = UPLOAD_SCHEME + filename
    return SourceItem(uri=uri, name=filename, link=link or uri, fetch=lambda: (data, None), root=UPLOAD_SCHEME)


def _outcome(report: IngestReport) -> dict[str, Any]:
    """A run where every document failed is a failed job; partial failures are listed in the result."""
    ok = report.added + report.updated + report.unchanged
    seen = ok + len(report.skipped) + len(report.failed)
    values: dict[str, Any] = {"result": report.as_dict(), "done": seen, "total": seen}
    if report.failed and not ok:
        reasons = "; ".join(f"{f.source}: {f.reason}" for f in report.failed[:3])
        return {**values, "status": "failed", "error": reasons}
    return {**values, "status": "succeeded", "error": None}


def _finish(sessions: sessionmaker[Session], job_id: int, *, status: str, error: str | None, **values: Any) -> None:
    with sessions.begin() as session:
        session.execute(
            sa.update(IngestJob)
            .where(IngestJob.id == job_id)
            .values(status=status, error=error, payload=None, **values)  # the upload is no longer needed
        )
    log.info("ingest_job.finished job_id=%s status=%s", job_id, status)


class _ProgressWriter:
    def __init__(self, sessions: sessionmaker[Session], job_id: int) -> None:
        self.sessions = sessions
        self.job_id = job_id
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < _PROGRESS_EVERY_S:
            return
        self._last = now
        with self.sessions.begin() as session:
            session.execute(sa.update(IngestJob).where(IngestJob.id == self.job_id).values(done=done, total=total))


def _view(row: IngestJob) -> JobView:
    return JobView(
        id=row.id,
        collection=row.collection,
        kind=row.kind,
        source=row.source,
        status=row.status,
        done=row.done,
        total=row.total,
        result=row.result,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
