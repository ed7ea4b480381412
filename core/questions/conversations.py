"""Conversation history per session key, and turning follow-ups into standalone queries."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.questions.follow_ups import depends_on_history
from core.ingest.chunking import count_tokens
from core.storage.models import Conversation, Message
from core.types import SessionKey


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    text: str
    search_query: str | None = None


def get_or_create_conversation(session: Session, key: SessionKey, collection_id: int) -> Conversation:
    created = session.scalars(
        insert(Conversation)
        .values(
            platform=key.platform,
            workspace=key.workspace,
            channel=key.channel,
            thread=key.thread,
            collection_id=collection_id,
        )
        .on_conflict_do_nothing(constraint="uq_conversations_session")
        .returning(Conversation)
    ).one_or_none()
    # A new thread is one round trip; a follow-up (the row existed, nothing returned) is two.
    return created or session.scalars(sa.select(Conversation).where(*same_session(key))).one()


def find_conversation(session: Session, key: SessionKey) -> Conversation | None:
    return session.scalars(sa.select(Conversation).where(*same_session(key))).one_or_none()


def same_session(key: SessionKey) -> tuple[sa.ColumnElement[bool], ...]:
    """The conversation of this platform thread (its unique key)."""
    return (
        Conversation.platform == key.platform,
        Conversation.workspace == key.workspace,
        Conversation.channel == key.channel,
        Conversation.thread == key.thread,
    )


def history_before(session: Session, conversation_id: int, message_id: int, *, token_budget: int) -> list[Turn]:
    """The latest turns before ``message_id`` that fit the budget, oldest first."""
    rows = session.scalars(
        sa.select(Message)
        .where(Message.conversation_id == conversation_id, Message.id < message_id)
        .order_by(Message.id.desc())
        .limit(40)
    ).all()
    turns: list[Turn] = []
    used = 0
    for message in rows:
        cost = count_tokens(message.text)
        if used + cost > token_budget:
            break
        used += cost
        turns.append(Turn(message.role, message.text, message.search_query))
    return list(reversed(turns))


def heuristic_standalone_query(question: str, history: list[Turn]) -> str:
    """Without an LLM: a follow-up that leans on earlier turns borrows the previous query.

    Retrieval only needs the topic words, so "what about for Discord?" after "how do I set up
    rate limits in Slack?" searches for both. A question that stands on its own (see
    core/follow_ups.py), a new topic included, is searched exactly as in a fresh thread.
    """
    previous = next((turn for turn in reversed(history) if turn.role == "user"), None)
    if previous is None or not depends_on_history(question):
        return question
    # Cap the borrowed part so a long thread's queries do not snowball.
    return f"{question} {(previous.search_query or previous.text)[:400]}"
