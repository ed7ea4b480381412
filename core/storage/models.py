"""Database tables (SQLAlchemy 2 typed models). Alembic migrations are written to match these.

Embeddings live in one untyped ``vector`` column because collections may use embedders of
different sizes; each large collection gets its own HNSW index on ``embedding::halfvec(N)`` (see
core/search/vector_index.py), and queries cast the same way so the planner can use it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Text search configuration for every chunk; one place to change it.
TS_CONFIG = "english"
TSV_EXPRESSION = (
    f"setweight(to_tsvector('{TS_CONFIG}', coalesce(title, '') || ' ' || coalesce(heading, '')), 'A')"
    f" || to_tsvector('{TS_CONFIG}', coalesce(text, ''))"
)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Collection(Base):
    """A knowledge base. Every chat workspace or guild answers from exactly one."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    embedder: Mapped[str] = mapped_column(String(200))
    dimension: Mapped[int] = mapped_column(Integer)
    # Per-collection overrides, e.g. {"rate_user_per_min": 5}
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # Term statistics for BM25 ranking, refreshed after each ingest that changed something.
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    avg_chunk_tokens: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # Bumped by every refresh of the term statistics; the postings are usable only while
    # postings_version equals it (they were built from the same chunks).
    term_stats_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    postings_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Lexemes in more chunks than this have postings: their `postings_depth` highest-impact chunks.
    postings_depth: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = created_at_column()


class Source(Base):
    """What was ingested and how (a folder, a URL or sitemap, a git repository), kept in sync.

    ``options`` holds the kind's settings (branch, globs, link pattern...), ``credentials`` the
    *names* of environment variables holding secrets (never the secrets), ``state`` what the next
    sync continues from (the last synced commit, HTTP validators, documents seen missing).
    See docs/sources.md.
    """

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("collection_id", "name", name="uq_sources_collection_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # folder | url | git (later confluence, notion, thread)
    target: Mapped[str] = mapped_column(Text)  # a path, a URL, a repository address
    options: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    credentials: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    schedule: Mapped[str | None] = mapped_column(String(100))  # "30m", "6h", "1d" or a cron line; None: by hand
    next_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    status: Mapped[str] = mapped_column(String(16), default="new", server_default="new")  # new|syncing|ok|failed
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sync_seconds: Mapped[float | None] = mapped_column()
    last_counts: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "source_uri", name="uq_documents_collection_source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    source_uri: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict, server_default="{}")
    # The source that brought it in (core/sources); removing the source removes its documents.
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    chunks: Mapped[list[DocumentChunk]] = relationship(
        back_populates="document", cascade="all, delete-orphan", passive_deletes=True
    )


class DocumentChunk(Base):
    __tablename__ = "document_chunks"
    __table_args__ = (
        Index("ix_document_chunks_document_position", "document_id", "position"),
        Index("ix_document_chunks_collection", "collection_id"),
        Index("ix_document_chunks_tsv", "tsv", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    # Denormalised so every search filters by tenant without a join.
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    heading: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[Any] = mapped_column(Vector())
    tsv: Mapped[Any] = mapped_column(TSVECTOR, Computed(TSV_EXPRESSION, persisted=True))

    document: Mapped[Document] = relationship(back_populates="chunks")


class TermStat(Base):
    """How many chunks of a collection contain a lexeme: the document frequency BM25 needs."""

    __tablename__ = "term_stats"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    lexeme: Mapped[str] = mapped_column(Text, primary_key=True)
    df: Mapped[int] = mapped_column(Integer)


class TermPosting(Base):
    """One of the chunks where a common lexeme weighs most in BM25 (see core/search/term_stats.py)."""

    __tablename__ = "term_postings"
    # impact in the key: the postings shortlist (core/search/bm25.py) reads the index alone (migration 0009).
    __table_args__ = (
        PrimaryKeyConstraint("collection_id", "lexeme", "chunk_id", postgresql_include=["impact"]),
    )

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    lexeme: Mapped[str] = mapped_column(Text, primary_key=True)
    # No foreign key: deleting chunks must stay cheap; a deleted chunk's postings are ignored (the
    # query joins document_chunks) and go at the next rebuild, which a deletion triggers anyway.
    chunk_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # BM25's term-frequency factor without idf: tf / (tf + k1 * (1 - b + b * length / average length)).
    impact: Mapped[float] = mapped_column(REAL)


class WorkspaceCollection(Base):
    """Maps a Slack workspace or Discord guild to the collection it answers from."""

    __tablename__ = "workspace_collections"
    __table_args__ = (UniqueConstraint("platform", "workspace", name="uq_workspace_collections"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(128))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))


class ChannelSetting(Base):
    """Per-channel behaviour, e.g. answer thread follow-ups only when mentioned."""

    __tablename__ = "channel_settings"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", name="uq_channel_settings"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(128))
    mentions_only: Mapped[bool] = mapped_column(default=False)
    # Resolved threads of this channel become learned answers (core/ingest/learned.py).
    learn_from_threads: Mapped[bool] = mapped_column(default=True, server_default=true())


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("platform", "workspace", "channel", "thread", name="uq_conversations_session"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(128))
    thread: Mapped[str] = mapped_column(String(128))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # "user" | "assistant"
    # An assistant message answers exactly one question; a question without one is pending.
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[str] = mapped_column(String(128), default="")
    text: Mapped[str] = mapped_column(Text)
    search_query: Mapped[str | None] = mapped_column(Text)  # the standalone query a follow-up became
    citations: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    grounded: Mapped[bool | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("message_id", "user_id", name="uq_feedback_message_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    score: Mapped[int] = mapped_column(SmallInteger)  # +1 helpful, -1 not helpful
    created_at: Mapped[datetime] = created_at_column()


class RateLimit(Base):
    """The recent requests of one scope (user, channel or workspace): a sliding-window log."""

    __tablename__ = "rate_limits"
    __table_args__ = (Index("ix_rate_limits_expires_at", "expires_at"),)

    scope: Mapped[str] = mapped_column(String(400), primary_key=True)
    # Times of the admitted requests still inside the window; at most the limit, so a few hundred.
    hits: Mapped[list[datetime]] = mapped_column(ARRAY(DateTime(timezone=True)))
    # When the newest hit leaves the window: after that the row holds nothing and may be deleted.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProcessedEvent(Base):
    """Platform deliveries already accepted; the primary key makes de-duplication hold across processes."""

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_created", "created_at"),)

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    created_at: Mapped[datetime] = created_at_column()


# -- console (issue 14): what documentation owners see; see docs/console.md ----------------------------
class QuestionTrace(Base):
    """One question and what became of it: written once per question by core/console/traces.py.

    ``question`` and ``standalone_query`` are NULL where the workspace opted out of storing question
    text; the whole row goes when the retention period ends (counts stay in ``question_daily``).
    """

    __tablename__ = "question_traces"
    __table_args__ = (
        Index("ix_question_traces_collection_asked", "collection_id", "asked_at"),
        Index("ix_question_traces_user", "platform", "user_id"),
        Index("ix_question_traces_asked", "asked_at"),
        Index("ix_question_traces_answer", "answer_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(128), default="")
    # No foreign keys: the retention purge deletes messages and traces independently.
    question_id: Mapped[int | None] = mapped_column(BigInteger)
    answer_id: Mapped[int | None] = mapped_column(BigInteger)
    asked_at: Mapped[datetime] = created_at_column()
    outcome: Mapped[str] = mapped_column(String(16))  # answered | not_covered | rate_limited | failed
    confidence: Mapped[float | None] = mapped_column(REAL)  # best vector similarity among the candidates
    question: Mapped[str | None] = mapped_column(Text)
    standalone_query: Mapped[str | None] = mapped_column(Text)
    passages: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")  # retrieved, with scores
    cited_documents: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list, server_default="{}")
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    total_ms: Mapped[float | None] = mapped_column(REAL)


class QuestionDaily(Base):
    """Counts per day, collection, door, outcome and latency bucket: the console's charts read these,
    not the traces, so they stay fast at millions of questions and outlive the retention purge."""

    __tablename__ = "question_daily"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[Any] = mapped_column(Date, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    latency_bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # core/console/traces.py
    count: Mapped[int] = mapped_column(Integer, default=0)


class DocumentCitations(Base):
    """How often each document was cited in an answer (kept up to date with every answer)."""

    __tablename__ = "document_citations"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    cited: Mapped[int] = mapped_column(Integer, default=0)
    up: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 👍 on answers citing it
    down: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_cited_at: Mapped[datetime] = created_at_column()


class FeedbackDaily(Base):
    """👍/👎 per collection and day the answered question was asked (core/console/traces.py)."""

    __tablename__ = "feedback_daily"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[Any] = mapped_column(Date, primary_key=True)
    up: Mapped[int] = mapped_column(Integer, default=0)
    down: Mapped[int] = mapped_column(Integer, default=0)


class KnowledgeGaps(Base):
    """The latest grouping of a collection's unanswered questions into topics (core/console/gaps.py)."""

    __tablename__ = "knowledge_gaps"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    computed_at: Mapped[datetime] = created_at_column()
    questions: Mapped[int] = mapped_column(Integer, default=0)
    topics: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")


class WorkspacePrivacy(Base):
    """A workspace's privacy choices: without stored text only counts and timings are kept."""

    __tablename__ = "workspace_privacy"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(128), primary_key=True)
    store_question_text: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = created_at_column()


class DigestChannel(Base):
    """A chat channel that opted into the weekly digest of a collection (core/console/digest.py)."""

    __tablename__ = "digest_channels"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", name="uq_digest_channels"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(128))
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    # The Monday of the last week whose digest this channel was sent: the claim that makes it once a week.
    last_week: Mapped[Any] = mapped_column(Date, nullable=True)

class QuestionDelivery(Base):
    """Where an accepted question is answered, and whether it was (see core/questions/lifecycle.py).

    One row per accepted question: the serialisable way back to its thread, the placeholder to
    replace, and the attempts made, so any worker can finish the job after a crash. Doors whose
    caller waits (REST API, playground, CLI) record one too, with the request's idempotency key
    (``request_key``, scoped to who asked): a retried request finds its question again.
    """

    __tablename__ = "question_deliveries"
    __table_args__ = (
        Index("ix_question_deliveries_undelivered", "created_at", postgresql_where="delivered_at IS NULL"),
        Index("uq_question_deliveries_request_key", "request_key", unique=True),
    )

    question_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    platform: Mapped[str] = mapped_column(String(32))
    where: Mapped[dict[str, Any]] = mapped_column()
    placeholder: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    request_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
