"""Privacy controls: retention of questions and answers, a workspace's opt-out from stored question
text, and one user's data exported or deleted (`docrag export` / `docrag delete`).

The daily counts (``question_daily``) and per-document citation counts hold no text and no user,
so they stay when questions are purged or deleted: the console's charts keep their history.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from core.storage.models import Conversation, Feedback, Message, QuestionTrace, WorkspacePrivacy

PURGE_BATCH = 5000  # rows per statement: short transactions, no long lock on a busy table


@dataclass(frozen=True)
class Purged:
    messages: int = 0
    traces: int = 0
    conversations: int = 0


def purge_expired(sessions: sessionmaker[Session], *, retention_days: int, now: datetime | None = None) -> Purged:
    """Delete questions, answers (their feedback goes with them) and traces older than the retention
    period, then the conversations left empty. ``retention_days`` 0 keeps everything."""
    if retention_days <= 0:
        return Purged()
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=retention_days)
    messages = _delete_in_batches(sessions, Message, Message.created_at < cutoff)
    traces = _delete_in_batches(sessions, QuestionTrace, QuestionTrace.asked_at < cutoff)
    empty = ~sa.exists().where(Message.conversation_id == Conversation.id)
    conversations = _delete_in_batches(sessions, Conversation, sa.and_(Conversation.updated_at < cutoff, empty))
    return Purged(messages, traces, conversations)


def _delete_in_batches(sessions: sessionmaker[Session], model: Any, condition: sa.ColumnElement[bool]) -> int:
    total = 0
    while True:
        with sessions.begin() as session:
            batch = sa.select(model.id).where(condition).limit(PURGE_BATCH).scalar_subquery()
            deleted = session.execute(sa.delete(model).where(model.id.in_(batch))).rowcount or 0
        total += deleted
        if deleted < PURGE_BATCH:
            return total


def set_question_text_storage(sessions: sessionmaker[Session], platform: str, workspace: str, *, store: bool) -> None:
    """Opt a workspace out of (or back into) storing question text; from now on, counts only."""
    with sessions.begin() as session:
        statement = insert(WorkspacePrivacy).values(platform=platform, workspace=workspace, store_question_text=store)
        session.execute(statement.on_conflict_do_update(
            index_elements=["platform", "workspace"], set_={"store_question_text": store, "updated_at": sa.func.now()}
        ))
        if not store:  # what was stored before the choice goes too: the traces keep their counts
            session.execute(
                sa.update(QuestionTrace)
                .where(QuestionTrace.platform == platform, QuestionTrace.workspace == workspace)
                .values(question=None, standalone_query=None, passages=[])
            )


def _user_questions(platform: str, user_id: str) -> sa.Select:
    return (
        sa.select(Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.platform == platform, Message.user_id == user_id, Message.role == "user")
    )


def export_user(sessions: sessionmaker[Session], platform: str, user_id: str) -> dict[str, Any]:
    """Everything stored about one user of one platform: their questions with the answers, their feedback."""
    with sessions() as session:
        asked = session.execute(
            sa.select(Message, Conversation.workspace, Conversation.channel, Conversation.thread)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id.in_(_user_questions(platform, user_id)))
            .order_by(Message.id)
        ).all()
        answers = {
            m.reply_to_id: m for m in session.scalars(
                sa.select(Message).where(Message.reply_to_id.in_([row.Message.id for row in asked]))
            )
        }
        feedback = session.scalars(
            sa.select(Feedback).where(Feedback.platform == platform, Feedback.user_id == user_id).order_by(Feedback.id)
        ).all()
        traces = session.scalar(sa.select(sa.func.count()).where(
            QuestionTrace.platform == platform, QuestionTrace.user_id == user_id))
    return {
        "platform": platform,
        "user": user_id,
        "questions": [
            {
                "asked_at": row.Message.created_at.isoformat(), "workspace": row.workspace, "channel": row.channel,
                "thread": row.thread, "question": row.Message.text,
                "answer": answers[row.Message.id].text if row.Message.id in answers else None,
            }
            for row in asked
        ],
        "feedback": [{"answer_id": f.message_id, "score": f.score, "at": f.created_at.isoformat()} for f in feedback],
        "console_traces": traces,
    }


@dataclass(frozen=True)
class Deleted:
    questions: int
    feedback: int
    traces: int


def delete_user(sessions: sessionmaker[Session], platform: str, user_id: str) -> Deleted:
    """Delete one user's questions (their answers and those answers' feedback go with them), the
    feedback they gave, and their console traces. Counts without text or user stay."""
    with sessions.begin() as session:
        questions = session.execute(
            sa.delete(Message).where(Message.id.in_(_user_questions(platform, user_id)))
        ).rowcount or 0
        feedback = session.execute(
            sa.delete(Feedback).where(Feedback.platform == platform, Feedback.user_id == user_id)
        ).rowcount or 0
        traces = session.execute(
            sa.delete(QuestionTrace).where(QuestionTrace.platform == platform, QuestionTrace.user_id == user_id)
        ).rowcount or 0
    return Deleted(questions, feedback, traces)
