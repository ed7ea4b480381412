"""The question lifecycle, written once for every chat door: accept, answer once, deliver once, recover.

1. **Accept** (the door, right after the platform is acknowledged): validate, rate-limit and store
   the question together with its ``Where`` (one transaction); show a placeholder through the
   platform's delivery port and store its reference; queue the durable answer job.
2. **Answer once** (the job, in any worker): the engine stores one answer per question (a unique
   key), so a job that runs twice gets the stored answer back.
3. **Deliver once**: the answer *replaces the placeholder*, which is safe to repeat; only when there
   is no placeholder is a new message posted, under a claim.
4. **Recover**: a job held by a dead worker is put back by any live worker within seconds
   (heartbeats, core/storage/queue.py); a question whose job was never queued is found by the sweep
   (``requeue_lost``). After ``max_attempts`` tries, or when the question is older than
   ``too_old``, the placeholder becomes an apology with a reference id, and nothing else is posted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable, Mapping

from core.storage.faults import DatabaseUnavailable
from core.errors import DocRagError, UpstreamUnavailable, new_reference
from core.storage.queue import QUEUE_ANSWERS
from core.observability.logcontext import question_context
from core.questions.claims import claim, release
from core.questions.engine import Engine
from core.questions.ports import DeliveryPort, LiveReply, StreamingPort
from core.questions.values import Apology, Delivery, Notice, Reply, Where
from core.types import Answer, SessionKey

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger(__name__)

ANSWER_TASK = "questions.answer"


@dataclass(frozen=True)
class LifecycleOptions:
    max_attempts: int = 4  # runs of the answer job (crashes included) before the apology
    too_old: timedelta = timedelta(hours=1)  # an answer this late is no longer worth giving
    lost_after: timedelta = timedelta(seconds=10)  # accepted, and still no job queued: it was lost


class Lifecycle:
    def __init__(
        self,
        engine: Engine,
        jobs: procrastinate.App,
        ports: Mapping[str, DeliveryPort],
        options: LifecycleOptions = LifecycleOptions(),
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.jobs = jobs  # opened for deferring from synchronous code
        self.ports = dict(ports)
        self.options = options

    # -- 1. accept ---------------------------------------------------------------------------------
    def accept(
        self, key: SessionKey, text: str, where: Where, *, collection: str | None = None, once: str | None = None
    ) -> int:
        """Store the question durably, show the placeholder, queue the answer job; the question's id.

        A refusal (invalid, rate limited, no collection) raises DocRagError for the door to tell;
        ``once`` (a delivery's name) makes a second acceptance of it raise AlreadyClaimed."""
        question_id = self.engine.accept(key, text, collection=collection, where=where, once=once)
        self._show_placeholder(question_id, where)
        self.defer(question_id)
        return question_id

    def _show_placeholder(self, question_id: int, where: Where) -> None:
        port = self.ports.get(where.platform)
        if port is None:
            return
        try:
            placeholder = port.post_placeholder(where)
        except Exception:  # no placeholder is no reason to lose the answer: it is posted instead
            log.warning("questions.placeholder_failed question_id=%s", question_id, exc_info=True)
            return
        if placeholder is not None:
            self.store.set_placeholder(question_id, placeholder)

    def defer(self, question_id: int) -> None:
        """Queue the answer job; one already waiting for this question is enough."""
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            self.jobs.configure_task(
                ANSWER_TASK, queue=QUEUE_ANSWERS, queueing_lock=f"answer-{question_id}"
            ).defer(question_id=question_id)
        except AlreadyEnqueued:
            pass

    # -- 2 and 3. the job: answer once, deliver once ------------------------------------------------------
    def run(self, question_id: int) -> None:
        with question_context(question_id):
            delivery = self.store.begin_attempt(question_id)
            if delivery is None:  # asked where the caller waits (web, CLI): nothing to deliver
                self.engine.answer(question_id)
                return
            if delivery.delivered:
                log.info("questions.already_delivered question_id=%s", question_id)
                return
            port = self.ports.get(delivery.platform)
            if port is None:
                raise DocRagError(f"No delivery port for {delivery.platform} in this worker.")
            live = self._open_stream(port, delivery)
            reply = self.compose(delivery, live, on_writing=_writing_hook(port, delivery.where))
            if live is None or not live.finish(reply):
                # Today's post-then-replace; a stream that started remembered its message as the placeholder.
                current = (self.store.delivery(question_id) or delivery) if live else delivery
                self.deliver(port, current, reply)
            self.store.mark_delivered(question_id)
            log.info("questions.delivered question_id=%s attempts=%s kind=%s",
                     question_id, delivery.attempts, type(reply).__name__)

    def _open_stream(self, port: DeliveryPort, delivery: Delivery) -> LiveReply | None:
        """A live reply when the port streams and a model writes (issue 12); None: deliver once done."""
        if not isinstance(port, StreamingPort) or not self.engine.streams:
            return None
        question_id = delivery.question_id
        try:
            return port.open_stream(delivery.where, delivery.placeholder,
                                    lambda reference: self.store.set_placeholder(question_id, reference))
        except Exception:  # streaming is a nicety: the answer is delivered the usual way
            log.warning("questions.stream_unavailable question_id=%s", question_id, exc_info=True)
            return None

    def compose(
        self, delivery: Delivery, live: LiveReply | None = None, *, on_writing: Callable[[], None] | None = None
    ) -> Reply:
        """The answer, or the reply that says why there is none: never silence. With ``live``, the
        answer's text is handed to it as the model writes it; ``on_writing`` is told when the writing starts."""
        question_id = delivery.question_id
        last_try = delivery.attempts >= self.options.max_attempts
        try:
            stored = self.store.stored_answer(question_id)
            if stored is not None:  # answered before a crash: deliver what the user would have got
                return stored
            if delivery.attempts > self.options.max_attempts:
                return self._give_up(question_id, "I kept failing to answer this one")
            if datetime.now(timezone.utc) - delivery.created_at > self.options.too_old:
                return self._give_up(question_id, "I was down for too long to answer it in time")
            return self._answer(question_id, live, on_writing)
        except UpstreamUnavailable as exc:
            if isinstance(exc, DatabaseUnavailable) and not last_try:
                raise  # the job's retry comes back when the database does
            log.warning("questions.upstream_failed question_id=%s reference=%s", question_id, exc.reference)
            service = exc.service[:1].lower() + exc.service[1:]  # "the language model", mid-sentence
            return Apology(exc.reference, f"{service} is unavailable right now")
        except DocRagError as exc:
            return Notice(str(exc))
        except Exception:
            reference = new_reference()
            log.exception("questions.answer_failed question_id=%s reference=%s", question_id, reference)
            self.store.save_failure(question_id, f"failed (reference {reference})")
            return Apology(reference, "something went wrong on my side")

    def _answer(self, question_id: int, live: LiveReply | None, on_writing: Callable[[], None] | None) -> Answer:
        if live is None:
            return self.engine.answer(question_id, on_writing=on_writing)
        if on_writing is not None:  # the stream's first words follow at once
            on_writing()
        stream = self.engine.answer_stream(question_id)
        while True:
            try:
                piece = next(stream)
            except StopIteration as done:
                answer: Answer = done.value
                return answer
            live.add(piece)

    def _give_up(self, question_id: int, reason: str) -> Apology:
        reference = new_reference()
        log.warning("questions.given_up question_id=%s reference=%s reason=%s", question_id, reference, reason)
        self.store.save_failure(question_id, f"given up (reference {reference}): {reason}")
        return Apology(reference, reason)

    def deliver(self, port: DeliveryPort, delivery: Delivery, reply: Reply) -> None:
        """Replace the placeholder (repeatable); with none to replace, post once under a claim."""
        if delivery.placeholder and port.replace(delivery.where, delivery.placeholder, reply):
            return
        key = f"reply:{delivery.question_id}"
        if not claim(self.store.sessions, delivery.platform, key):
            log.info("questions.reply_already_posted question_id=%s", delivery.question_id)
            return
        try:
            port.post(delivery.where, reply)
        except Exception:
            release(self.store.sessions, delivery.platform, key)  # nothing was posted: let the retry do it
            raise

    # -- 4. recover -------------------------------------------------------------------------------------
    def requeue_lost(self) -> int:
        """Queue the job of every question accepted a while ago that has none (its process died
        between storing it and queueing); returns how many."""
        lost = self.store.undelivered_without_job(older_than=self.options.lost_after, task_name=ANSWER_TASK)
        for question_id in lost:
            self.defer(question_id)
        if lost:
            log.warning("questions.requeued_lost count=%s ids=%s", len(lost), lost[:20])
        return len(lost)


def _writing_hook(port: DeliveryPort, where: Where) -> Callable[[], None] | None:
    """A port may show that the answer is being written (``writing(where)``, optional: Slack's
    assistant status line); a failure to show it never stops the answer."""
    writing = getattr(port, "writing", None)
    if writing is None:
        return None

    def show() -> None:
        try:
            writing(where)
        except Exception:
            log.warning("questions.writing_status_failed platform=%s", where.platform, exc_info=True)

    return show


def reply_text(reply: Reply) -> str:
    """Plain text of any reply (for logs and simple ports)."""
    if isinstance(reply, Answer):
        return reply.text
    if isinstance(reply, Apology):
        return f"Sorry, {reply.reason}. (reference: {reply.reference})"
    return reply.text


def register_answer_task(app: procrastinate.App, lifecycle: Lifecycle) -> None:
    """The one answer job, for every platform: ``questions.answer(question_id)``."""
    import procrastinate

    # Any failure (the platform's API, the database) is tried again a few seconds later; the
    # lifecycle itself counts attempts (crashes too) and turns the last one into an apology.
    retry = procrastinate.RetryStrategy(max_attempts=lifecycle.options.max_attempts + 1, wait=5)

    @app.task(name=ANSWER_TASK, queue=QUEUE_ANSWERS, retry=retry)
    def answer(question_id: int) -> None:
        lifecycle.run(question_id)
