"""The documents of a collection as people see them: listed, found by link, deleted one by one.

Deleting a document refreshes the collection's term statistics, as an ingest that prunes does."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.search.term_stats import refresh_term_stats
from core.storage.models import Collection, Document, DocumentChunk


@dataclass(frozen=True)
class DocumentRow:
    id: int
    source: str
    link: str
    title: str
    chunks: int
    updated_at: datetime | None


def collection_id(session: Session, name: str) -> int | None:
    return session.scalar(sa.select(Collection.id).where(Collection.name == name))


def list_documents(
    sessions: sessionmaker[Session], collection: str, *, limit: int, offset: int
) -> tuple[int, list[DocumentRow]] | None:
    with sessions() as session:
        coll_id = collection_id(session, collection)
        if coll_id is None:
            return None
        total = session.scalar(
            sa.select(sa.func.count()).select_from(Document).where(Document.collection_id == coll_id)
        )
        chunks = (
            sa.select(sa.func.count())
            .select_from(DocumentChunk)
            .where(DocumentChunk.document_id == Document.id)
            .scalar_subquery()
        )
        rows = session.execute(
            sa.select(Document, chunks)
            .where(Document.collection_id == coll_id)
            .order_by(Document.id)
            .limit(limit)
            .offset(offset)
        ).all()
        return int(total or 0), [
            DocumentRow(d.id, d.source_uri, d.link, d.title, int(n), d.updated_at) for d, n in rows
        ]


def delete_document(
    sessions: sessionmaker[Session], collection: str, *, document_id: int | None = None, source: str | None = None
) -> DocumentRow | None:
    """Delete one document and its chunks; refresh the collection's term statistics."""
    with sessions.begin() as session:
        coll_id = collection_id(session, collection)
        if coll_id is None:
            return None
        match = Document.id == document_id if document_id is not None else Document.source_uri == source
        document = session.scalar(sa.select(Document).where(Document.collection_id == coll_id, match))
        if document is None:
            return None
        row = DocumentRow(document.id, document.source_uri, document.link, document.title, 0, document.updated_at)
        session.execute(sa.delete(Document).where(Document.id == document.id))
    refresh_term_stats(sessions, coll_id)
    return row


@dataclass(frozen=True)
class StoredChunk:
    heading: str
    anchor: str | None  # the fragment of the chunk's link, if its section has one
    text: str


@dataclass(frozen=True)
class StoredDocument:
    title: str
    link: str
    chunks: list[StoredChunk]


def find_document(sessions: sessionmaker[Session], collection: str, links: list[str]) -> StoredDocument | None:
    """The collection's document whose link is one of ``links`` (the newest if several folders
    hold the same relative path), with its chunks in document order."""
    with sessions() as session:
        document = session.scalar(
            sa.select(Document)
            .join(Collection, Collection.id == Document.collection_id)
            .where(Collection.name == collection, Document.link.in_(links))
            .order_by(Document.updated_at.desc(), Document.id.desc())
            .limit(1)
        )
        if document is None:
            return None
        rows = session.execute(
            sa.select(DocumentChunk.heading, DocumentChunk.link, DocumentChunk.text)
            .where(DocumentChunk.document_id == document.id)
            .order_by(DocumentChunk.position)
        ).all()
        chunks = [StoredChunk(heading, link.partition("#")[2] or None, text) for heading, link, text in rows]
        return StoredDocument(title=document.title, link=document.link, chunks=chunks)
