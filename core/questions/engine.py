"""The engine: what every door (Slack, Discord, web, CLI) calls, composed of small pieces.

``accept`` = validate (validation.py) + admit (admission.py: collection, rate limits) + store
(store.py). ``answer`` = load from the store + compose (core/answers/pipeline.py) + store the
answer once. Observers (observer.py: metrics, timings) are told of each step. Chat doors do not
call ``answer`` themselves: they go through the lifecycle (lifecycle.py), whose durable job calls
it; the web and CLI doors, whose caller waits, call ``ask``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from collections.abc import Callable, Generator as Streamed

from core.answers.pipeline import AnswerPipeline, Composed
from core.tenancy.collections import check_embedder
from core.errors import DocRagError, RateLimited, UpstreamUnavailable
from core.observability.logcontext import question_context
from core.questions.admission import Admission
from core.questions.observer import LifecycleObserver, Observers
from core.questions.passage_search import PassageSearch
from core.questions.store import QuestionStore
from core.questions.validation import clean_question
from core.questions.conversations import Turn
from core.questions.tracing import trace_answered, trace_failed, trace_rate_limited
from core.questions.values import Question, Where
from core.types import Answer, Passage, SessionKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    default_collection: str = "default"
    max_question_chars: int = 2000
    history_token_budget: int = 1200


class Engine:
    def __init__(
        self,
        *,
        store: QuestionStore,
        admission: Admission,
        pipeline: AnswerPipeline,
        options: EngineOptions,
        observer: LifecycleObserver | None = None,
    ) -> None:
        self.store = store
        self.admission = admission
        self.pipeline = pipeline
        self.options = options
        self.observers = observer if isinstance(observer, Observers) else Observers([observer] if observer else [])
        self.passage_search = PassageSearch(
            store.sessions, pipeline.retriever, options.max_question_chars, pipeline.options.max_chunks_per_document
        )

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.store.sessions

    # -- the single call (doors whose caller waits) -------------------------------------------------
    def ask(self, key: SessionKey, question: str, *, collection: str | None = None) -> Answer:
        return self.answer(self.accept(key, question, collection=collection))

    def accept(
        self, key: SessionKey, question: str, *, collection: str | None = None, where: Where | None = None,
        once: str | None = None, request: str | None = None,
    ) -> int:
        """Validate, rate-limit and store the question (with where to deliver it); its id.
        ``request``: a waiting caller's idempotency key (store.add_question)."""
        try:
            text = self.clean_question(question)
            coll = self.admission.admit(key, collection)
        except DocRagError as exc:
            self.observers.refused(key.platform, exc)
            if isinstance(exc, RateLimited):
                trace_rate_limited(self.sessions, key, self.admission.collection_for(key, collection).id, text)
            raise
        question_id = self.store.add_question(key, text, coll.id, where, once=once, request=request)
        with question_context(question_id):
            log.info("question.accepted session=%s message_id=%s", key, question_id)
        self.observers.accepted(key.platform, question_id)
        return question_id

    def answer(self, question_id: int, *, on_writing: Callable[[], None] | None = None) -> Answer:
        """Answer a stored question once; a second call returns the stored answer. ``on_writing``:
        see AnswerPipeline.compose."""
        with question_context(question_id):
            existing = self.store.stored_answer(question_id)
            if existing is not None:
                return existing
            question, history = self._question_and_history(question_id)
            try:
                composed = self.pipeline.compose(question.text, history, question.collection_id, on_writing=on_writing)
            except UpstreamUnavailable as exc:
                self._failed(question, exc)
                raise
            return self._settled(question, composed)

    # -- streaming (issue 12): the same answer, shown while it is written -------------------------
    @property
    def streams(self) -> bool:
        """A model that can stream writes the answers (without one, the extract is immediate)."""
        return callable(getattr(self.pipeline.generator, "stream", None))

    def answer_stream(self, question_id: int) -> Streamed[str, None, Answer]:
        """:meth:`answer`, yielding the answer's text as the model writes it (already with its final
        citation numbers), then returning the stored Answer. Nothing is yielded when no model is
        written to (extract, not covered, already answered): that answer is immediate. The returned
        Answer is authoritative; when its text does not extend what was yielded (a broken stream
        retried in other words) the caller replaces what it showed. Failures raise as in ``answer``."""
        steps = self._answer_streamed(question_id)
        while True:
            # The log context is set per step, not across the yields: a door may drive the stream
            # from several threads (Discord runs each step in its executor).
            with question_context(question_id):
                try:
                    piece = next(steps)
                except StopIteration as done:
                    return done.value
            yield piece

    def _answer_streamed(self, question_id: int) -> Streamed[str, None, Answer]:
        existing = self.store.stored_answer(question_id)
        if existing is not None:
            return existing
        question, history = self._question_and_history(question_id)
        try:
            composed = yield from self.pipeline.compose_stream(question.text, history, question.collection_id)
        except UpstreamUnavailable as exc:
            self._failed(question, exc)
            raise
        return self._settled(question, composed)

    # -- the steps both share ---------------------------------------------------------------------------
    def _question_and_history(self, question_id: int) -> tuple[Question, list[Turn]]:
        question, collection = self.store.question(question_id)
        check_embedder(collection, self.pipeline.embedder.name, self.pipeline.embedder.dimension)
        return question, self.store.history(question, token_budget=self.options.history_token_budget)

    def _failed(self, question: Question, exc: UpstreamUnavailable) -> None:
        first = self.store.save_failure(question.id, f"{exc.service} failed (reference {exc.reference}): {exc.detail}")
        self.observers.failed(question.key.platform, exc)
        if first:  # the console sees a question's first failure, not each retry
            trace_failed(self.sessions, question)

    def _settled(self, question: Question, composed: Composed) -> Answer:
        stored = self.store.save_answer(question, composed.query, composed.answer)
        if stored.new:
            log.info("question.answered message_id=%s grounded=%s timings=%s",
                     question.id, stored.answer.grounded, stored.answer.timings_ms)
            self.observers.answered(question.key.platform, stored.answer)
            trace_answered(self.sessions, question, composed, stored.answer)
        return stored.answer

    def clean_question(self, question: object) -> str:
        return clean_question(question, max_chars=self.options.max_question_chars)

    # -- other services adapters use ------------------------------------------------------------------
    def search(self, query: str, *, collection: str, limit: int = 10) -> list[Passage]:
        return self.passage_search.search(query, collection=collection, limit=limit)

    def record_feedback(self, message_id: int, *, platform: str, user_id: str, score: int) -> None:
        """Store a thumbs up (+1) or down (-1) for an answer; a second click replaces the first."""
        self.store.record_feedback(message_id, platform=platform, user_id=user_id, score=score)

    def is_conversation(self, key: SessionKey) -> bool:
        """Has DocRag taken part in this thread? (Follow-ups are answered only there.)"""
        return self.store.is_conversation(key)


__all__ = ["Engine", "EngineOptions", "RateLimited"]
