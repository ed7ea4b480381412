"""Leases: a waiting door's claim on answering a question itself, backed by its durable job.

A door whose caller waits (REST API, playground, CLI) answers inline, so the answer streams to the
caller as it is written. To lose nothing when the process dies mid-answer, it first queues the
question's answer job *scheduled a lease ahead* and keeps pushing that schedule forward while it
answers (one statement per process every ``renew_every``, for all the questions it holds). Live,
the door finishes and cancels the job; dead, the renewals stop, the job falls due, and any worker
answers the question within ``seconds``. SQL over procrastinate's job table lives here only.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

LEASE_S = 15.0  # what a waiting caller's crash costs at most before a worker answers instead


class Leases:
    def __init__(self, sessions: sessionmaker[Session], *, seconds: float = LEASE_S) -> None:
        self.sessions = sessions
        self.seconds = seconds
        self.renew_every = seconds / 3  # two renewals can fail (a busy database) before the lease runs out
        self._held: dict[int, int] = {}  # job id -> how many holders
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def held(self, job_id: int | None) -> Iterator[None]:
        """Keep ``job_id`` (a scheduled answer job) from falling due while the block runs."""
        if job_id is None:
            yield
            return
        with self._lock:
            self._held[job_id] = self._held.get(job_id, 0) + 1
            self._start()
        try:
            yield
        finally:
            with self._lock:
                left = self._held.pop(job_id) - 1
                if left:
                    self._held[job_id] = left

    def take_over(self, task_name: str, question_id: int) -> int | None:
        """The id of the question's answer job, now leased to the caller, if its lease ran out
        (its holder died) and no worker has started it; None when someone is on it."""
        with self.sessions.begin() as session:
            return session.scalar(sa.text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() + make_interval(secs => :s) "
                "WHERE task_name = :task AND status = 'todo' AND (args->>'question_id')::bigint = :q "
                "AND (scheduled_at IS NULL OR scheduled_at <= now()) RETURNING id"
            ), {"s": self.seconds, "task": task_name, "q": question_id})

    def renew(self, job_ids: list[int]) -> None:
        with self.sessions.begin() as session:
            session.execute(sa.text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() + make_interval(secs => :s) "
                "WHERE id = ANY(:ids) AND status = 'todo'"
            ), {"s": self.seconds, "ids": job_ids})

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._keep, name="docrag-leases", daemon=True)
            self._thread.start()

    def _keep(self) -> None:
        while not self._wake.wait(self.renew_every):
            with self._lock:
                ids = list(self._held)
            if not ids:
                continue
            try:
                self.renew(ids)
            except Exception:  # the next round tries again; a lease that runs out only means a worker answers too
                log.warning("questions.lease_renewal_failed count=%s", len(ids), exc_info=True)
