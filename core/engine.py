"""The engine: the one call every door (Slack, Discord, web, CLI) makes.

``ask`` = ``accept`` (validate, rate-limit, persist the question) + ``answer`` (history,
standalone query, retrieval, generation, persist the answer). Adapters that answer in the
background call the two halves separately, so an accepted question is on disk before the
platform is acknowledged and can be answered after a restart.
"""
from __future__ import annotations

import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.tenancy.collections import check_embedder, collection_name_for, get_collection
from core.conversations import (
    Turn,
    find_conversation,
    get_or_create_conversation,
    heuristic_standalone_query,
    history_before,
)
from core.answers import evidence
from core.search.embeddings import Embedder
from core.errors import InvalidQuestion, NotFound, UpstreamUnavailable
from core.answers.extractive import extractive_answer
from core.follow_ups import depends_on_history
from core.answers.llm import (
    Generator,
    build_answer_messages,
    build_rewrite_messages,
    renumber_citations,
    strip_invalid_citations,
)
from core.observability.logcontext import question_context
from core.storage.models import Collection, Conversation, Feedback, Message
from core.tenancy.ratelimit import RateLimiter, RateLimitPolicy
from core.search.retrieval import Retriever, SearchResult
from core.types import Answer, Citation, Passage, SessionKey

log = logging.getLogger(__name__)

# Chat mention syntax (Slack <@U123>, <!here>; Discord <@123>, <@!123>, <@&role>) is not question text.
_MENTION = re.compile(r"<[@!#][!&]?[\w|.-]*>")
# A semantic embedder this sure of the best passage answers even when the words differ.
CONFIDENT_SIMILARITY = {"sentence-transformers": 0.55, "openai": 0.5}

NOT_COVERED = "I couldn't find this in the documentation, so I won't guess."
NOT_COVERED_NOTHING = "I couldn't find this in the documentation, so I won't guess: nothing in it matches the question."
CLOSEST_SOURCES = 3


@dataclass(frozen=True)
class EngineOptions:
    default_collection: str = "default"
    max_question_chars: int = 2000
    context_passages: int = 6
    max_chunks_per_document: int = 2
    history_token_budget: int = 1200


@dataclass(frozen=True)
class PendingQuestion:
    message_id: int
    key: SessionKey
    text: str


class Engine:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        embedder: Embedder,
        retriever: Retriever,
        generator: Generator | None,
        limiter: RateLimiter,
        policy: RateLimitPolicy,
        options: EngineOptions,
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.retriever = retriever
        self.generator = generator
        self.limiter = limiter
        self.policy = policy
        self.options = options

    # -- the single call -------------------------------------------------------------------
    def ask(self, key: SessionKey, question: str, *, collection: str | None = None) -> Answer:
        return self.answer(self.accept(key, question, collection=collection))

    def accept(self, key: SessionKey, question: str, *, collection: str | None = None) -> int:
        """Validate, rate-limit and store the question; return its id for :meth:`answer`."""
        text = self.clean_question(question)
        with self.sessions.begin() as session:
            coll = self._collection_for(session, key, collection)
            limits = self.policy.with_overrides(coll.settings or {}).limits_for(key)
        self.limiter.admit(limits)
        with self.sessions.begin() as session:
            conversation = get_or_create_conversation(session, key, coll.id)
            message = Message(conversation_id=conversation.id, role="user", user_id=key.user, text=text)
            session.add(message)
            session.flush()
            with question_context(message.id):
                log.info("question.accepted session=%s message_id=%s", key, message.id)
            return message.id

    def answer(self, question_id: int) -> Answer:
        """Answer a stored question once; a second call returns the stored answer."""
        with question_context(question_id):
            return self._answer(question_id)

    def _answer(self, question_id: int) -> Answer:
        started = time.perf_counter()
        with self.sessions() as session:
            existing = self._stored_answer(session, question_id)
            if existing is not None:
                return existing
            question, conversation, collection = self._load_question(session, question_id)
            check_embedder(collection, self.embedder.name, self.embedder.dimension)
            history = history_before(
                session, conversation.id, question_id, token_budget=self.options.history_token_budget
            )
        timings: dict[str, float] = {}
        try:
            query = self._standalone_query(question.text, history, timings)
            found = self._retrieve(query, collection.id, timings)
            answer = self._compose(question.text, query, found, history, timings, collection_id=collection.id)
        except UpstreamUnavailable as exc:
            self._store_failure(question, exc)
            raise
        timings["total_ms"] = _ms_since(started)
        return self._store_answer(question, query, answer, timings)

    def clean_question(self, question: str) -> str:
        if not isinstance(question, str):
            raise InvalidQuestion("A question must be text.")
        text = unicodedata.normalize("NFC", question)
        only_mentions = bool(_MENTION.search(text)) and not _MENTION.sub("", text).strip()
        text = _MENTION.sub("", text)
        if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t\r" for ch in text):
            raise InvalidQuestion("The question contains control characters; please send plain text.")
        text = " ".join(text.split())
        if only_mentions:
            raise InvalidQuestion("You mentioned me without a question. Ask me something, e.g. “how do I ingest a folder?”")
        if not text:
            raise InvalidQuestion("The question is empty. Ask me something, e.g. “how do I ingest a folder?”")
        if len(text) > self.options.max_question_chars:
            raise InvalidQuestion(
                f"The question is {len(text)} characters long; the limit is {self.options.max_question_chars}. "
                "Please shorten it to the essential part."
            )
        return text

    # -- other engine services adapters use ---------------------------------------------------
    def search(self, query: str, *, collection: str, limit: int = 10) -> list[Passage]:
        text = self.clean_question(query)
        with self.sessions() as session:
            coll = get_collection(session, collection)
            check_embedder(coll, self.embedder.name, self.embedder.dimension)
        return self.retriever.search(
            text, collection_id=coll.id, limit=limit, max_per_document=self.options.max_chunks_per_document
        ).passages

    def record_feedback(self, message_id: int, *, platform: str, user_id: str, score: int) -> None:
        """Store a thumbs up (+1) or down (-1) for an answer; a second click replaces the first."""
        if score not in (1, -1):
            raise InvalidQuestion("Feedback must be +1 or -1.")
        with self.sessions.begin() as session:
            message = session.get(Message, message_id)
            if message is None or message.role != "assistant":
                raise NotFound("That answer no longer exists.")
            statement = insert(Feedback).values(message_id=message_id, platform=platform, user_id=user_id, score=score)
            session.execute(
                statement.on_conflict_do_update(constraint="uq_feedback_message_user", set_={"score": score})
            )

    def pending_questions(self, platform: str, *, limit: int = 100) -> list[PendingQuestion]:
        """Accepted questions that have neither an answer nor a recorded failure."""
        reply = sa.orm.aliased(Message)
        with self.sessions() as session:
            rows = session.execute(
                sa.select(Message, Conversation)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .outerjoin(reply, reply.reply_to_id == Message.id)
                .where(Conversation.platform == platform, Message.role == "user", reply.id.is_(None))
                .order_by(Message.id)
                .limit(limit)
            ).all()
        return [
            PendingQuestion(
                message.id,
                SessionKey(conv.platform, conv.workspace, conv.channel, conv.thread, message.user_id),
                message.text,
            )
            for message, conv in rows
        ]

    def abandon(self, question_id: int, reason: str) -> None:
        """Record that a question will not be answered (e.g. its channel is gone), so restarts skip it."""
        with self.sessions.begin() as session:
            question = session.get(Message, question_id)
            if question is None or question.role != "user":
                return
            session.execute(
                insert(Message)
                .values(
                    conversation_id=question.conversation_id,
                    role="error",
                    reply_to_id=question_id,
                    user_id="",
                    text=f"abandoned: {reason}",
                )
                .on_conflict_do_nothing()
            )

    def is_conversation(self, key: SessionKey) -> bool:
        """Has DocRag taken part in this thread? (Follow-ups are answered only there.)"""
        with self.sessions() as session:
            return find_conversation(session, key) is not None

    # -- steps --------------------------------------------------------------------------------
    def _collection_for(self, session: Session, key: SessionKey, explicit: str | None) -> Collection:
        name = explicit or collection_name_for(session, key.platform, key.workspace, self.options.default_collection)
        return get_collection(session, name)

    def _standalone_query(self, question: str, history: list[Turn], timings: dict[str, float]) -> str:
        # A question that stands on its own (a new topic too) searches as in a fresh thread:
        # neither the history nor a rewrite can pull the previous topic back in.
        if not history or not depends_on_history(question):
            return question
        if self.generator is None:
            return heuristic_standalone_query(question, history)
        started = time.perf_counter()
        try:
            rewritten = self.generator.complete(build_rewrite_messages(question, history)).strip().strip('"')
        except UpstreamUnavailable:
            # The answer step will meet the same outage and report it; retrieval can still work.
            return heuristic_standalone_query(question, history)
        finally:
            timings["rewrite_ms"] = _ms_since(started)
        return rewritten[:1000] or question

    def _retrieve(self, query: str, collection_id: int, timings: dict[str, float]) -> SearchResult:
        started = time.perf_counter()
        result = self.retriever.search(
            query,
            collection_id=collection_id,
            limit=self.options.context_passages,
            max_per_document=self.options.max_chunks_per_document,
        )
        timings["retrieval_ms"] = _ms_since(started)
        return result

    def _is_weak(self, query: str, found: SearchResult, collection_id: int, timings: dict[str, float]) -> bool:
        """No passage answers the question: see core/answers/evidence.py for the measurements and their calibration."""
        if not found.passages:
            return True
        started = time.perf_counter()
        with self.sessions() as session:
            measured = evidence.measure(session, query, collection_id, found.passages)
        timings["evidence_ms"] = _ms_since(started)
        threshold = next(
            (value for prefix, value in CONFIDENT_SIMILARITY.items() if self.embedder.name.startswith(prefix)), 2.0
        )
        if found.best_similarity >= threshold and not measured.unknown_terms:
            return False  # a semantic embedder is sure, and the question names nothing the documents never mention
        return not evidence.answers_question(measured)

    def _compose(
        self,
        question: str,
        query: str,
        found: SearchResult,
        history: list[Turn],
        timings: dict[str, float],
        *,
        collection_id: int,
    ) -> Answer:
        passages = found.passages
        if self._is_weak(query, found, collection_id, timings):
            return not_covered(passages[:CLOSEST_SOURCES])
        if self.generator is None:
            text, cited = extractive_answer(query, passages)
            return Answer(text, _citations(passages, cited))
        started = time.perf_counter()
        try:
            raw = self.generator.complete(build_answer_messages(question, passages, history))
        finally:
            timings["llm_ms"] = _ms_since(started)
        text, cited = strip_invalid_citations(raw, len(passages))
        if not cited:  # an answer that cites nothing still lists what it was written from
            return Answer(text, _citations(passages, range(1, len(passages) + 1)))
        return Answer(renumber_citations(text, cited), _citations(passages, cited))

    # -- persistence ----------------------------------------------------------------------------
    def _load_question(self, session: Session, question_id: int) -> tuple[Message, Conversation, Collection]:
        row = session.execute(
            sa.select(Message, Conversation, Collection)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Collection, Collection.id == Conversation.collection_id)
            .where(Message.id == question_id, Message.role == "user")
        ).one_or_none()
        if row is None:
            raise NotFound(f"No question with id {question_id}.")
        return row.Message, row.Conversation, row.Collection

    def _stored_answer(self, session: Session, question_id: int) -> Answer | None:
        reply = session.scalar(sa.select(Message).where(Message.reply_to_id == question_id))
        if reply is None or reply.role != "assistant":
            return None
        return Answer(
            reply.text,
            [Citation(**c) for c in reply.citations],
            grounded=bool(reply.grounded),
            message_id=reply.id,
            timings_ms=dict(reply.timings),
        )

    def _store_answer(self, question: Message, query: str, answer: Answer, timings: dict[str, float]) -> Answer:
        try:
            with self.sessions.begin() as session:
                reply = Message(
                    conversation_id=question.conversation_id,
                    role="assistant",
                    reply_to_id=question.id,
                    text=answer.text,
                    citations=[c.__dict__ for c in answer.citations],
                    timings=timings,
                    grounded=answer.grounded,
                )
                session.add(reply)
                session.execute(sa.update(Message).where(Message.id == question.id).values(search_query=query))
                session.flush()
                reply_id = reply.id
        except IntegrityError:  # another worker answered the same question first
            with self.sessions() as session:
                stored = self._stored_answer(session, question.id)
            if stored is None:
                raise
            return stored
        log.info("question.answered message_id=%s grounded=%s timings=%s", question.id, answer.grounded, timings)
        return Answer(answer.text, answer.citations, answer.grounded, reply_id, timings)

    def _store_failure(self, question: Message, error: UpstreamUnavailable) -> None:
        """Record that this question got an apology, so restarts do not answer it again."""
        with self.sessions.begin() as session:
            session.execute(
                insert(Message)
                .values(
                    conversation_id=question.conversation_id,
                    role="error",
                    reply_to_id=question.id,
                    user_id="",
                    text=f"{error.service} failed (reference {error.reference}): {error.detail}",
                )
                .on_conflict_do_nothing()
            )


def not_covered(closest: list[Passage]) -> Answer:
    """Say plainly that the documents do not answer this; point to the closest sources (listed as
    links by every door), quote none of them."""
    if not closest:
        return Answer(NOT_COVERED_NOTHING, [], grounded=False)
    numbers = [f"[{n}]" for n in range(1, len(closest) + 1)]
    named = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
    text = f"{NOT_COVERED} The closest sources I found are {named}, listed below; they may still help."
    return Answer(text, _citations(closest, range(1, len(closest) + 1)), grounded=False)


def _citations(passages: list[Passage], shown: Iterable[int]) -> list[Citation]:
    """Sources numbered 1..n in the order shown; ``shown`` holds the 1-based passage numbers."""
    picked = [passages[p - 1] for p in shown if 1 <= p <= len(passages)]
    return [Citation(n=n, title=p.title, source=p.source, heading=p.heading) for n, p in enumerate(picked, start=1)]


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
