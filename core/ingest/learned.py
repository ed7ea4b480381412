"""Answers learned from resolved threads: a question and the answer people accepted, kept as a
document of the workspace's collection, so the next person who asks finds it.

A thread "ends well" when someone gives DocRag's answer a 👍, or marks the thread resolved (a ✅
reaction or the word "resolved"). What is learned is told apart from the official documents
everywhere it is cited: its title says "Answered in #channel on DATE", it links to the thread, and
its text names who confirmed it. It expires (``ttl_days``), and can be removed by hand.

Never learned: a thread of a private channel or a direct message (the collection is shared by the
whole workspace, and a private conversation must not reach people outside it), a channel whose
admins turned learning off, and a thread whose answer said the documents do not cover it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from core.ingest.learned_label import learned_title
from core.ingest.sources import SourceItem
from core.search.term_stats import refresh_term_stats
from core.storage.models import Collection, Document, Source
from core.tenancy.channels import learns_from_threads
from core.types import SessionKey

if TYPE_CHECKING:
    from core.ingest.pipeline import Ingestor

LEARNED_SCHEME = "learned://"
LEARNED_KIND = "learned"  # the kind of the source learned answers belong to (never synced: they come from chat)
DEFAULT_TTL_DAYS = 180


@dataclass(frozen=True)
class ResolvedThread:
    key: SessionKey  # the thread's session key (its user: who confirmed it)
    channel_name: str  # as people know it, without the leading "#"
    private: bool  # a private channel, group or direct message
    question: str
    answer: str
    permalink: str  # where the thread is, for the citation
    confirmed_by: str  # a display name or user id
    confirmed_at: datetime


class Learned(Enum):
    LEARNED = "learned"
    PRIVATE = "private channels never feed a shared collection"
    TURNED_OFF = "learning is turned off in this channel"
    NOT_COVERED = "the answer did not come from the documents"


def thread_uri(key: SessionKey) -> str:
    return f"{LEARNED_SCHEME}{key.platform}/{key.workspace}/{key.channel}/{key.thread}"


def learned_root(key: SessionKey) -> str:
    return f"{LEARNED_SCHEME}{key.platform}/{key.workspace}"


def why_not_learned(session: Session, thread: ResolvedThread, *, grounded: bool) -> Learned | None:
    if thread.private:
        return Learned.PRIVATE
    if not learns_from_threads(session, thread.key.platform, thread.key.workspace, thread.key.channel):
        return Learned.TURNED_OFF
    if not grounded:
        return Learned.NOT_COVERED
    return None


def learned_item(thread: ResolvedThread, *, ttl_days: int = DEFAULT_TTL_DAYS) -> SourceItem:
    """The thread as a document: one section holding the question and the accepted answer."""
    day = thread.confirmed_at.date().isoformat()
    title = learned_title(thread.channel_name, day, _one_line(thread.question, 80))
    # The title as front matter, not a heading: a heading would add an anchor to the thread's link.
    front_matter_title = json.dumps(title.replace('"', "'"), ensure_ascii=False)
    text = (
        f"---\ntitle: {front_matter_title}\n---\n\n"
        f"Question: {thread.question.strip()}\n\n"
        f"Answer: {thread.answer.strip()}\n\n"
        f"Confirmed by {thread.confirmed_by} on {day}. Learned from a chat thread, not from the documentation.\n"
    )
    expires = thread.confirmed_at + timedelta(days=ttl_days)
    return SourceItem(
        uri=thread_uri(thread.key),
        name="learned.md",
        link=thread.permalink,
        fetch=lambda: (text.encode(), "text/markdown; charset=utf-8"),
        root=learned_root(thread.key),
        meta={
            "learned": {
                "channel": thread.channel_name,
                "confirmed_by": thread.confirmed_by,
                "confirmed_at": thread.confirmed_at.isoformat(),
                "expires_at": expires.isoformat(),
            }
        },
    )


def expire_learned(sessions: sessionmaker[Session], *, now: datetime | None = None) -> int:
    """Delete learned answers past their expiry, in every collection; returns how many."""
    now = now or datetime.now(timezone.utc)
    expires_at = Document.meta["learned"]["expires_at"].astext
    with sessions.begin() as session:
        rows = session.execute(
            sa.delete(Document)
            .where(Document.source_uri.startswith(LEARNED_SCHEME), expires_at < now.isoformat())
            .returning(Document.collection_id)
        ).all()
    for collection_id in {row.collection_id for row in rows}:
        refresh_term_stats(sessions, collection_id)
    return len(rows)


@dataclass(frozen=True)
class LearnedDocument:
    id: int
    collection: str
    title: str
    link: str
    confirmed_by: str
    expires_at: str


def list_learned(sessions: sessionmaker[Session], collection: str | None = None) -> list[LearnedDocument]:
    query = (
        sa.select(Document, Collection.name)
        .join(Collection, Collection.id == Document.collection_id)
        .where(Document.source_uri.startswith(LEARNED_SCHEME))
        .order_by(Document.id)
    )
    if collection:
        query = query.where(Collection.name == collection)
    with sessions() as session:
        return [
            LearnedDocument(
                doc.id,
                name,
                doc.title,
                doc.link,
                (doc.meta.get("learned") or {}).get("confirmed_by", ""),
                (doc.meta.get("learned") or {}).get("expires_at", ""),
            )
            for doc, name in session.execute(query)
        ]


def remove_learned(sessions: sessionmaker[Session], document_id: int) -> bool:
    with sessions.begin() as session:
        collection_id = session.scalar(
            sa.delete(Document)
            .where(Document.id == document_id, Document.source_uri.startswith(LEARNED_SCHEME))
            .returning(Document.collection_id)
        )
    if collection_id is None:
        return False
    refresh_term_stats(sessions, collection_id)
    return True


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def learn(
    ingestor: Ingestor, thread: ResolvedThread, *, collection: str, grounded: bool, ttl_days: int = DEFAULT_TTL_DAYS
) -> Learned:
    """Keep a resolved thread's answer in ``collection``, unless a rule above says not to.

    Confirming the same thread again (a second 👍) re-stores the same document, once."""
    with ingestor.sessions() as session:
        reason = why_not_learned(session, thread, grounded=grounded)
    if reason is not None:
        return reason
    item = learned_item(thread, ttl_days=ttl_days)
    source_id = learned_source(ingestor.sessions, collection, thread.key)
    ingestor.ingest_items([item], collection=collection, sources={item.root: source_id} if source_id else None)
    return Learned.LEARNED


def learned_source(sessions: sessionmaker[Session], collection: str, key: SessionKey) -> int | None:
    """The "learned" source of one workspace in ``collection`` (created once), so learned answers
    show in `docrag source list` and the sources page, and `docrag source remove` removes them all.
    None when the collection does not exist yet (the ingest creates it; the document has no source)."""
    root = learned_root(key)
    with sessions.begin() as session:
        collection_id = session.scalar(sa.select(Collection.id).where(Collection.name == collection))
        if collection_id is None:
            return None
        session.execute(
            insert(Source)
            .values(collection_id=collection_id, name=f"learned from {key.platform} {key.workspace}"[:200],
                    kind=LEARNED_KIND, target=root)
            .on_conflict_do_nothing(constraint="uq_sources_collection_name")
        )
        return session.scalar(sa.select(Source.id).where(
            Source.collection_id == collection_id, Source.kind == LEARNED_KIND, Source.target == root))
