"""A conversation as its door shows it back: the transcript of a session, and its collection."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.questions.conversations import find_conversation
from core.storage.models import Collection, Conversation, Message
from core.types import SessionKey


@dataclass(frozen=True)
class Transcript:
    collection: str
    turns: list[dict[str, Any]]


def conversation_collection(sessions: sessionmaker[Session], key: SessionKey) -> str | None:
    """The collection an existing conversation answers from, or None when there is no such conversation."""
    with sessions() as session:
        return session.scalar(
            sa.select(Collection.name)
            .join(Conversation, Conversation.collection_id == Collection.id)
            .where(
                Conversation.platform == key.platform,
                Conversation.workspace == key.workspace,
                Conversation.channel == key.channel,
                Conversation.thread == key.thread,
            )
        )


def transcript(sessions: sessionmaker[Session], key: SessionKey) -> Transcript | None:
    with sessions() as session:
        conversation = find_conversation(session, key)
        if conversation is None:
            return None
        name = session.scalar(sa.select(Collection.name).where(Collection.id == conversation.collection_id))
        messages = session.scalars(
            sa.select(Message).where(Message.conversation_id == conversation.id).order_by(Message.id)
        ).all()
        return Transcript(collection=name or "", turns=[_turn(m) for m in messages])


def _turn(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "text": message.text,
        "citations": list(message.citations or []),
        "grounded": message.grounded,
        "created_at": message.created_at.isoformat(),
    }


