"""The one store of questions, answers and their deliveries (SQL over core.storage.models lives here).

Every write that must happen once relies on a unique key: an answer (or an apology) is the one
message whose ``reply_to_id`` is the question, a delivery record is keyed by its question.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.console.traces import record_vote
from core.errors import InvalidQuestion, NotFound
from core.storage.models import Collection, Conversation, Feedback, Message, QuestionDelivery
from core.questions.claims import AlreadyClaimed, claim_in
from core.questions.conversations import Turn, find_conversation, get_or_create_conversation, history_before
from core.questions.values import Delivery, Question, Role, Where
from core.types import Answer, Citation, SessionKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredAnswer:
    """An answer as stored, and whether this call stored it (False: another run did first)."""

    answer: Answer
    new: bool


class DuplicateRequest(Exception):
    """A question was stored already for this request key (a retried request)."""

    def __init__(self, question_id: int) -> None:
        super().__init__(f"request already asked question {question_id}")
        self.question_id = question_id


class QuestionStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # -- questions --------------------------------------------------------------------------------
    def add_question(
        self, key: SessionKey, text: str, collection_id: int, where: Where | None = None, *, once: str | None = None,
        request: str | None = None,
    ) -> int:
        """Store a question (and its delivery record) in one transaction.

        ``once`` names the delivery it came from: claimed in the same transaction, so the question
        is stored at most once per delivery even when two processes take it in hand (AlreadyClaimed).
        ``request`` is a waiting caller's idempotency key: a second question for it is refused with
        DuplicateRequest, naming the first (the unique index decides between concurrent requests)."""
        try:
            with self.sessions.begin() as session:
                if once is not None and not claim_in(session, key.platform, once):
                    raise AlreadyClaimed(once)
                conversation = get_or_create_conversation(session, key, collection_id)
                message = Message(conversation_id=conversation.id, role=Role.USER.value, user_id=key.user, text=text)
                session.add(message)
                session.flush()
                if where is not None:
                    session.add(QuestionDelivery(question_id=message.id, platform=where.platform,
                                                 where=where.as_json(), request_key=request))
                    session.flush()
                return message.id
        except IntegrityError:
            first = self.question_for_request(request) if request is not None else None
            if first is None:
                raise
            raise DuplicateRequest(first) from None

    def question_for_request(self, request: str) -> int | None:
        """The question a request key asked, if any."""
        with self.sessions() as session:
            return session.scalar(sa.select(QuestionDelivery.question_id).where(QuestionDelivery.request_key == request))

    def question(self, question_id: int) -> tuple[Question, Collection]:
        with self.sessions() as session:
            row = session.execute(
                sa.select(Message, Conversation, Collection)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .join(Collection, Collection.id == Conversation.collection_id)
                .where(Message.id == question_id, Message.role == Role.USER.value)
            ).one_or_none()
            if row is None:
                raise NotFound(f"No question with id {question_id}.")
            message, conv, collection = row
            session.expunge(collection)
        key = SessionKey(conv.platform, conv.workspace, conv.channel, conv.thread, message.user_id)
        question = Question(message.id, key, message.text, conv.id, collection.id, message.created_at)
        return question, collection

    def history(self, question: Question, *, token_budget: int) -> list[Turn]:
        with self.sessions() as session:
            return history_before(session, question.conversation_id, question.id, token_budget=token_budget)

    def is_conversation(self, key: SessionKey) -> bool:
        with self.sessions() as session:
            return find_conversation(session, key) is not None

    # -- answers ----------------------------------------------------------------------------------
    def stored_answer(self, question_id: int) -> Answer | None:
        with self.sessions() as session:
            reply = session.scalar(sa.select(Message).where(Message.reply_to_id == question_id))
            if reply is None or reply.role != Role.ASSISTANT.value:
                return None
            return Answer(reply.text, [Citation(**c) for c in reply.citations], grounded=bool(reply.grounded),
                          message_id=reply.id, timings_ms=dict(reply.timings))

    def stored_failure(self, question_id: int) -> str | None:
        """What was recorded when a question got an apology instead of an answer (None: it did not)."""
        with self.sessions() as session:
            return session.scalar(sa.select(Message.text).where(
                Message.reply_to_id == question_id, Message.role == Role.ERROR.value))

    def is_settled(self, question_id: int) -> bool:
        """Answered, or recorded as failed: nothing more will be generated for it."""
        with self.sessions() as session:
            return session.scalar(sa.select(Message.id).where(Message.reply_to_id == question_id)) is not None

    def save_answer(self, question: Question, query: str, answer: Answer) -> StoredAnswer:
        """Store the answer once; a concurrent second run gets the first one back."""
        try:
            with self.sessions.begin() as session:
                reply = Message(
                    conversation_id=question.conversation_id, role=Role.ASSISTANT.value, reply_to_id=question.id,
                    text=answer.text, citations=[c.__dict__ for c in answer.citations], timings=answer.timings_ms,
                    grounded=answer.grounded,
                )
                session.add(reply)
                session.execute(sa.update(Message).where(Message.id == question.id).values(search_query=query))
                session.flush()
                reply_id = reply.id
        except IntegrityError:  # another worker answered the same question first
            stored = self.stored_answer(question.id)
            if stored is None:
                raise
            return StoredAnswer(stored, new=False)
        return StoredAnswer(Answer(answer.text, answer.citations, answer.grounded, reply_id, answer.timings_ms), True)

    def save_failure(self, question_id: int, text: str) -> bool:
        """Record that a question got an apology, so nothing answers it later; False when one was
        recorded already (a retry)."""
        with self.sessions.begin() as session:
            question = session.get(Message, question_id)
            if question is None or question.role != Role.USER.value:
                return False
            inserted = session.execute(
                insert(Message)
                .values(conversation_id=question.conversation_id, role=Role.ERROR.value, reply_to_id=question_id,
                        user_id="", text=text)
                .on_conflict_do_nothing()
            )
            return bool(inserted.rowcount)

    def record_feedback(self, message_id: int, *, platform: str, user_id: str, score: int) -> None:
        if score not in (1, -1):
            raise InvalidQuestion("Feedback must be +1 or -1.")
        with self.sessions.begin() as session:
            message = session.get(Message, message_id)
            if message is None or message.role != Role.ASSISTANT.value:
                raise NotFound("That answer no longer exists.")
            previous = session.scalar(sa.select(Feedback.score).where(
                Feedback.message_id == message_id, Feedback.user_id == user_id).with_for_update())
            statement = insert(Feedback).values(message_id=message_id, platform=platform, user_id=user_id, score=score)
            session.execute(
                statement.on_conflict_do_update(constraint="uq_feedback_message_user", set_={"score": score})
            )
            record_vote(session, message_id, previous, score)  # the console's counts (core/console/traces.py)

    # -- deliveries -------------------------------------------------------------------------------
    def delivery(self, question_id: int) -> Delivery | None:
        with self.sessions() as session:
            row = session.get(QuestionDelivery, question_id)
            return _delivery(row) if row is not None else None

    def set_placeholder(self, question_id: int, placeholder: str) -> None:
        with self.sessions.begin() as session:
            session.execute(sa.update(QuestionDelivery).where(QuestionDelivery.question_id == question_id)
                            .values(placeholder=placeholder))

    def begin_attempt(self, question_id: int) -> Delivery | None:
        """Count one more attempt at delivering (durably, before any work: a crash still counts)."""
        with self.sessions.begin() as session:
            row = session.scalars(
                sa.update(QuestionDelivery).where(QuestionDelivery.question_id == question_id)
                .values(attempts=QuestionDelivery.attempts + 1).returning(QuestionDelivery)
            ).one_or_none()
            return _delivery(row) if row is not None else None

    def mark_delivered(self, question_id: int) -> None:
        with self.sessions.begin() as session:
            session.execute(sa.update(QuestionDelivery)
                            .where(QuestionDelivery.question_id == question_id, QuestionDelivery.delivered_at.is_(None))
                            .values(delivered_at=sa.func.now()))

    def undelivered_without_job(self, *, older_than: timedelta, task_name: str, limit: int = 200) -> list[int]:
        """Questions not delivered, accepted more than ``older_than`` ago, with no answer job
        waiting or running: their job was never queued (the process died in between)."""
        cutoff = datetime.now(timezone.utc) - older_than
        no_job = sa.text(
            "NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.task_name = :task "
            "AND j.status IN ('todo', 'doing') AND (j.args->>'question_id')::bigint = question_deliveries.question_id)"
        ).bindparams(task=task_name)
        with self.sessions() as session:
            return list(session.scalars(
                sa.select(QuestionDelivery.question_id)
                .where(QuestionDelivery.delivered_at.is_(None), QuestionDelivery.created_at < cutoff, no_job)
                .order_by(QuestionDelivery.question_id).limit(limit)
            ))


def _delivery(row: QuestionDelivery) -> Delivery:
    return Delivery(row.question_id, Where.from_json(row.where), row.placeholder, row.attempts,
                    row.delivered_at is not None, row.created_at)
