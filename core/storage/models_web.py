"""Tables of the web door: API keys and the ingestion jobs the REST API starts.

Kept apart from core/storage/models.py (same ``Base``, so Alembic and the metadata see them) because only
the REST API and its CLI use them.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.storage.models import Base, created_at_column


class ApiKey(Base):
    """A bearer key: only its SHA-256 is stored; ``prefix`` lets an operator recognise it in a list."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Collection names, not ids: a key may be made for a collection its first upload creates.
    collections: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IngestJob(Base):
    """One upload or URL to ingest: what to ingest, how far it got and what came of it.

    The uploaded bytes wait here (not on a web server's disk), so any worker process can run the job.
    """

    __tablename__ = "ingest_jobs"
    __table_args__ = (Index("ix_ingest_jobs_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    collection: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # "upload" | "url"
    source: Mapped[str] = mapped_column(Text)  # file name or URL
    link: Mapped[str | None] = mapped_column(Text)  # what citations of an upload link to
    # The upload's bytes, dropped once ingested; deferred so that polling a job never loads them.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|succeeded|failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
