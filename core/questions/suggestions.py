"""Questions to suggest when someone opens DocRag as an assistant: what people ask most, then what
the collection's largest documents are about.

A question is suggested only when at least ``MIN_ASKERS`` different people asked it in the same
words and the answer came from the documents: a question one person typed in a private channel is
never shown to the whole workspace.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased, sessionmaker

from core.tenancy.collections import collection_name_for
from core.storage.models import (
    Collection,
    Conversation,
    Document,
    DocumentChunk,
    Message,
)

MIN_ASKERS = 3
RECENT_DAYS = 90
MAX_QUESTION_CHARS = 150
TITLE_CHARS = 40
# Pages that are lists of other things, not a topic to ask about.
_NOT_A_TOPIC = re.compile(r"change ?log|changes|release notes|history|index|contents|genindex|search|license|authors", re.I)


@dataclass(frozen=True)
class SuggestedPrompt:
    title: str  # the short label shown on the button
    message: str  # the question sent when it is chosen


def suggested_prompts(
    sessions: sessionmaker[Session], collection: str, *, limit: int = 4, now: datetime | None = None
) -> list[SuggestedPrompt]:
    now = now or datetime.now(timezone.utc)
    with sessions() as session:
        collection_id = session.scalar(sa.select(Collection.id).where(Collection.name == collection))
        if collection_id is None:
            return []
        asked = _most_asked(session, collection_id, since=now - timedelta(days=RECENT_DAYS), limit=limit)
        prompts = [SuggestedPrompt(_label(q), q) for q in asked]
        seen = {p.message.lower() for p in prompts}
        for title in _topics(session, collection_id, limit=limit * 3):
            if len(prompts) >= limit:
                break
            message = f"What does the documentation say about {title}?"
            if message.lower() not in seen:
                seen.add(message.lower())
                prompts.append(SuggestedPrompt(_label(title), message))
    return prompts[:limit]


def _most_asked(session: Session, collection_id: int, *, since: datetime, limit: int) -> list[str]:
    reply = aliased(Message)
    normalised = sa.func.lower(sa.func.btrim(Message.text))
    rows = session.execute(
        sa.select(sa.func.min(Message.text))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(reply, reply.reply_to_id == Message.id)
        .where(
            Conversation.collection_id == collection_id,
            Message.role == "user",
            Message.created_at >= since,
            sa.func.length(Message.text) <= MAX_QUESTION_CHARS,
            reply.grounded.is_(True),
        )
        .group_by(normalised)
        .having(sa.func.count(sa.distinct(Message.user_id)) >= MIN_ASKERS)
        .order_by(sa.func.count().desc(), normalised)
        .limit(limit)
    ).scalars()
    return [" ".join(text.split()) for text in rows]


def _topics(session: Session, collection_id: int, *, limit: int) -> list[str]:
    chunks = sa.func.count(DocumentChunk.id)
    rows = session.execute(
        sa.select(Document.title)
        .join(DocumentChunk, DocumentChunk.document_id == Document.id)
        .where(Document.collection_id == collection_id, ~Document.source_uri.startswith("learned://"))
        .group_by(Document.id, Document.title)
        .order_by(chunks.desc(), Document.title)
        .limit(limit * 2)
    ).scalars()
    titles = [t.strip() for t in rows if t and t.strip() and not _NOT_A_TOPIC.fullmatch(t.strip())]
    return titles[:limit]


def _label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def workspace_prompts(
    sessions: sessionmaker[Session], platform: str, workspace: str, *, default_collection: str, limit: int = 4
) -> list[SuggestedPrompt]:
    """:func:`suggested_prompts` of the collection a chat workspace answers from (its mapping, else the default)."""
    with sessions() as session:
        collection = collection_name_for(session, platform, workspace, default_collection)
    return suggested_prompts(sessions, collection, limit=limit)
