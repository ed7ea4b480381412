"""Which stored answer a confirmation in a chat thread accepts (SQL over the stored questions).

A door knows only what the person touched: a button carrying the answer's id, a reaction on a
message, or a "resolved" written in a thread. The message may be DocRag's answer (it replaced
the placeholder whose id the delivery record kept) or the question that opened the thread (its
id is the conversation's thread id).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.questions.values import Role
from core.storage.models import Collection, Conversation, Message, QuestionDelivery
from core.types import SessionKey

_MARKERS = re.compile(r"\s*\[\d+\]")  # the answer's [n] refer to its own sources, not to the learned document


@dataclass(frozen=True)
class AcceptedAnswer:
    key: SessionKey  # the conversation, with the asker as its user
    question: str
    answer: str
    grounded: bool
    collection: str
    answer_id: int


@dataclass(frozen=True)
class Target:
    """What a confirmation points at; any of the three ways may be given, the first found wins."""

    platform: str
    workspace: str
    channel: str = ""  # the conversation's channel (Slack channel; Discord text channel)
    answer_id: int | None = None  # a feedback button carries it
    placeholder: str | None = None  # the answer's message as its delivery record names it
    placeholder_channel: str | None = None  # Slack: a ts is unique only within its channel
    thread: str | None = None  # a thread root: the latest answer of that conversation


def accepted_answer(session: Session, target: Target) -> AcceptedAnswer | None:
    answer = (
        _by_id(session, target)
        or _by_placeholder(session, target)
        or _latest_in_thread(session, target)
    )
    return _accepted(session, answer, target) if answer is not None else None


def _by_id(session: Session, target: Target) -> Message | None:
    if target.answer_id is None:
        return None
    return session.scalar(sa.select(Message).where(Message.id == target.answer_id, Message.role == Role.ASSISTANT.value))


def _by_placeholder(session: Session, target: Target) -> Message | None:
    if not target.placeholder:
        return None
    query = (
        sa.select(Message)
        .join(QuestionDelivery, QuestionDelivery.question_id == Message.reply_to_id)
        .where(QuestionDelivery.platform == target.platform, _names(QuestionDelivery.placeholder, target.placeholder),
               Message.role == Role.ASSISTANT.value)
    )
    if target.placeholder_channel:
        query = query.where(QuestionDelivery.where["channel"].astext == target.placeholder_channel)
    return session.scalar(query.limit(1))


def _names(column, placeholder: str):
    """The delivery whose placeholder is this message; a Discord answer streamed past 2,000
    characters also lists its continuation messages after it (``<first>+<id>``)."""
    return sa.or_(column == placeholder, column.startswith(placeholder + "+", autoescape=True))


def _latest_in_thread(session: Session, target: Target) -> Message | None:
    if not target.thread:
        return None
    return session.scalar(
        sa.select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.platform == target.platform, Conversation.workspace == target.workspace,
               Conversation.channel == target.channel, Conversation.thread == target.thread,
               Message.role == Role.ASSISTANT.value)
        .order_by(Message.grounded.desc().nulls_last(), Message.id.desc())  # the last answer from the docs
        .limit(1)
    )


def _accepted(session: Session, answer: Message, target: Target) -> AcceptedAnswer | None:
    row = session.execute(
        sa.select(Message, Conversation, Collection.name)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Collection, Collection.id == Conversation.collection_id)
        .where(Message.id == answer.reply_to_id)
    ).one_or_none()
    if row is None:
        return None
    question, conversation, collection = row
    if (conversation.platform, conversation.workspace) != (target.platform, target.workspace):
        return None  # a confirmation never reaches another workspace's answers
    key = SessionKey(conversation.platform, conversation.workspace, conversation.channel, conversation.thread,
                     question.user_id)
    return AcceptedAnswer(
        key=key,
        question=question.search_query or question.text,  # a follow-up, as the standalone question it became
        answer=_MARKERS.sub("", answer.text).strip(),
        grounded=bool(answer.grounded),
        collection=collection,
        answer_id=answer.id,
    )
