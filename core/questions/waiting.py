"""The lifecycle for doors whose caller waits for the answer: the REST API, the playground, the CLI.

The same path as every chat door, with the caller as the delivery:

1. **Accept**: validate, rate-limit and store the question with its delivery record (and the
   request's idempotency key, if any) in one transaction. A retried request with the same key
   finds its question instead: never a second question, never a second answer.
2. **Hold the durable job**: the question's answer job (``questions.answer``, the one every
   platform uses) is queued a lease ahead and the lease is renewed while this process answers
   (leases.py). If the process dies, the job falls due and any worker answers the question.
3. **Answer once, inline**: the engine's answer-once path, streamed or not; the answer is stored.
4. **Deliver**: the door hands the stored answer back (HTTP response, SSE stream, terminal); the
   delivery is marked done and the job cancelled. An answer a worker produced instead is fetched
   later (``GET /api/v1/questions/<id>``, the playground page, ``docrag ask --request-id``).
"""
from __future__ import annotations

import enum
import logging
import re
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Iterator

from core.questions.engine import Engine
from core.questions.leases import Leases
from core.questions.lifecycle import ANSWER_TASK
from core.questions.store import DuplicateRequest
from core.questions.values import Reply, Where
from core.storage.queue import QUEUE_ANSWERS, queue_reachable
from core.types import Answer, SessionKey

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger(__name__)

WAITING_PLATFORMS = ("api", "web", "cli")
_REFERENCE = re.compile(r"reference ([A-Za-z0-9]+)")


@dataclass(frozen=True)
class Accepted:
    """An accepted question, and whether this request asked it (False: a retry found it)."""

    question_id: int
    new: bool
    job_id: int | None = None  # the answer job held for it, when this caller answers


class State(str, enum.Enum):
    ANSWERING = "answering"
    ANSWERED = "answered"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """Where a question stands: its answer, or the reference of the apology it got."""

    question_id: int
    key: SessionKey
    text: str
    collection: str
    created_at: datetime
    state: State
    answer: Answer | None = None
    reference: str | None = None


class CallerPort:
    """The delivery port of a waiting door: the caller takes the stored answer itself (or fetches it
    later), so a worker that finishes a question after a crash only stores it."""

    def __init__(self, platform: str) -> None:
        self.platform = platform

    def post_placeholder(self, where: Where) -> str | None:
        return None

    def replace(self, where: Where, placeholder: str, reply: Reply) -> bool:
        return False

    def post(self, where: Where, reply: Reply) -> None:
        log.info("questions.stored_for_caller platform=%s kind=%s", self.platform, type(reply).__name__)


class IdempotencyKeyReused(Exception):
    """The request key was used before for a different question."""


class WaitingDoor:
    def __init__(self, engine: Engine, jobs: procrastinate.App | None, leases: Leases | None = None) -> None:
        """``jobs`` None: no durable job (a test's bare blueprint); the question is still stored
        once and answered inline."""
        self.engine = engine
        self.store = engine.store
        self.jobs = jobs
        self.leases = leases or Leases(engine.sessions)

    # -- 1 and 2: accept, and hold the durable job ------------------------------------------------
    def accept(
        self, key: SessionKey, text: str, *, collection: str | None = None, request: str | None = None
    ) -> Accepted:
        """Store the question durably (DocRagError for a refusal, as ``Engine.accept``); a request
        key asked before returns that question (IdempotencyKeyReused if it was another one)."""
        if request is not None:
            earlier = self.store.question_for_request(request)
            if earlier is not None:  # a retry: no validation, no rate limit, no second question
                return self._retried(earlier, text)
        where = Where(key.platform) if self.jobs is not None else None
        try:
            question_id = self.engine.accept(key, text, collection=collection, where=where, request=request)
        except DuplicateRequest as dup:  # the same request, concurrently: the first one won
            return self._retried(dup.question_id, text)
        return Accepted(question_id, True, self._queue_held(question_id))

    def _retried(self, question_id: int, text: str) -> Accepted:
        question, _ = self.store.question(question_id)
        if question.text != self.engine.clean_question(text):
            raise IdempotencyKeyReused(question_id)
        return Accepted(question_id, False)

    def _queue_held(self, question_id: int) -> int | None:
        """Queue the answer job a lease ahead: it runs only if this process stops renewing."""
        if self.jobs is None:
            return None
        # Unreachable database: the stored question has no job yet; the lost-question sweep
        # queues it, or a retry with the same key finds it.
        with queue_reachable():
            return self.jobs.configure_task(
                ANSWER_TASK, queue=QUEUE_ANSWERS, queueing_lock=f"answer-{question_id}",
                schedule_in={"seconds": int(self.leases.seconds)},
            ).defer(question_id=question_id)

    def resume(self, accepted: Accepted) -> Accepted | None:
        """For a retry of an unanswered question: take it over when whoever held it died (its lease
        ran out and no worker started it), so this caller answers it; None when someone is on it."""
        if self.store.is_settled(accepted.question_id) or self.jobs is None:
            return None
        job_id = self.leases.take_over(ANSWER_TASK, accepted.question_id)
        return Accepted(accepted.question_id, False, job_id) if job_id is not None else None

    # -- 3 and 4: answer once, inline, and deliver --------------------------------------------------
    def answer(self, accepted: Accepted) -> Answer:
        with self._answering(accepted):
            return self.engine.answer(accepted.question_id)

    def answer_stream(self, accepted: Accepted) -> Generator[str, None, Answer]:
        """``Engine.answer_stream`` under the lease; a caller who leaves mid-stream may drain it."""
        with self._answering(accepted):
            return (yield from self.engine.answer_stream(accepted.question_id))

    @contextmanager
    def _answering(self, accepted: Accepted) -> Iterator[None]:
        with self.leases.held(accepted.job_id):
            try:
                yield
            finally:
                self._settle(accepted)

    def _settle(self, accepted: Accepted) -> None:
        """Answered (or apologised for): the delivery is done and the held job goes. Otherwise (an
        unavailable database, a crash of this request) the job stays: it answers when due."""
        try:
            if not self.store.is_settled(accepted.question_id):
                return
            self.store.mark_delivered(accepted.question_id)
            if accepted.job_id is not None and self.jobs is not None:
                self.jobs.job_manager.cancel_job_by_id(accepted.job_id, delete_job=True)
        except Exception:  # the job still finds the question delivered, or answers it: nothing is lost
            log.warning("questions.settle_failed question_id=%s", accepted.question_id, exc_info=True)

    # -- where a question stands ------------------------------------------------------------------
    def outcome(self, question_id: int) -> Outcome:
        """The question's state and answer (NotFound for no such question)."""
        question, collection = self.store.question(question_id)
        answer = self.store.stored_answer(question_id)
        failure = self.store.stored_failure(question_id) if answer is None else None
        state = State.ANSWERED if answer else State.FAILED if failure is not None else State.ANSWERING
        reference = _REFERENCE.search(failure or "")
        return Outcome(question.id, question.key, question.text, collection.name, question.created_at, state,
                       answer, reference.group(1) if reference else None)
