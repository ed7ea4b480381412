"""The composition root: the one place that turns Settings into concrete objects.

Collaborators are imported where they are built (ingestion pulls in parsers and an HTTP client,
the engine SQLAlchemy's ORM and metrics): a `docrag search` never loads the ingestion stack.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from bots.db_budget import connection_profile, warn_if_over_capacity
from core.storage import schema
from core.storage.db import Database, check_pgvector, connect, resolve_database_url
from core.storage.timeouts import Work
from core.search.embeddings import Embedder, build_embedder

if TYPE_CHECKING:
    from core.config import Settings
    from core.engine import Engine
    from core.ingest.pipeline import Ingestor
    from core.answers.llm import Generator
    from core.sources.registry import Sources
    from core.sources.sync import SourceSyncer


def open_database(settings: Settings, *, check_schema: bool = True, process: str = "cli") -> Database:
    """Connect (starting the embedded server if needed) with the pool and time limits of this kind
    of process (bots/db_budget.py); refuse an out-of-date schema."""
    database = connect(
        resolve_database_url(
            settings.database_url, settings.data_dir, shared_buffers_mb=settings.embedded_shared_buffers_mb
        ),
        profile=connection_profile(settings, process),
    )
    check_pgvector(database.engine)
    if check_schema:
        schema.ensure_current(database.engine)
    if process != "cli":  # a long-running process: say now if the deployment can run out of connections
        warn_if_over_capacity(database.engine, settings)
    return database


def build_embedder_from(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        return build_embedder(
            "openai",
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            base_url=settings.openai_base_url,
            model=settings.embedding_model,
            batch_size=settings.embedding_batch_size,
        )
    if settings.embedder == "sentence-transformers":
        return build_embedder("sentence-transformers", model_path=settings.st_model_path)
    return build_embedder("hashing", dimension=settings.hashing_dimension)


def build_generator(settings: Settings) -> Generator | None:
    if not settings.llm_enabled:
        return None
    from core.answers.llm import ChatSettings, OpenAIChat

    return OpenAIChat(
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
        base_url=settings.openai_base_url,
        settings=ChatSettings(
            model=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            max_tokens=settings.llm_max_tokens,
        ),
    )


@dataclass
class Container:
    """Lazily built collaborators for one process."""

    settings: Settings
    database: Database

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder_from(self.settings)

    @cached_property
    def ingestor(self) -> Ingestor:
        from core.ingest.pipeline import ChunkingOptions, Ingestor

        return Ingestor(
            sessions=self.database.sessions_for(Work.INGESTION),
            embedder=self.embedder,
            chunking=ChunkingOptions(self.settings.chunk_tokens, self.settings.chunk_overlap),
            http_timeout_s=self.settings.http_timeout_s,
            vector_index_min_chunks=self.settings.vector_index_min_chunks,
        )

    @cached_property
    def sources(self) -> Sources:
        from core.sources.registry import Sources

        return Sources(self.database.sessions, embedder=lambda: (self.embedder.name, self.embedder.dimension))

    @cached_property
    def syncer(self) -> SourceSyncer:
        import os

        from core.sources.sync import SourceSyncer, SyncOptions

        s = self.settings
        return SourceSyncer(
            self.database.sessions_for(Work.INGESTION),
            lambda: self.ingestor,
            options=SyncOptions(
                mirrors_dir=(s.sources_dir or s.data_dir / "sources").resolve(),
                confirm_missing=s.sync_confirm_missing,
                politeness_s=s.sync_politeness_s,
                max_backoff_s=s.sync_max_backoff_s,
                http_timeout_s=s.http_timeout_s,
            ),
            secret=os.environ.get,  # credentials are names of environment variables, read here only
        )

    @cached_property
    def engine(self) -> Engine:
        from core.engine import EngineOptions
        from core.metrics import MeteredEngine
        from core.tenancy.ratelimit import RateLimiter, RateLimitPolicy
        from core.search.retrieval import Retriever

        s = self.settings
        return MeteredEngine(
            sessions=self.database.sessions,
            embedder=self.embedder,
            retriever=Retriever(
                sessions=self.database.sessions, embedder=self.embedder, fusion=s.fusion, vector_weight=s.vector_weight
            ),
            generator=build_generator(s),
            limiter=RateLimiter(self.database.sessions),
            policy=RateLimitPolicy(
                s.rate_user_per_min, s.rate_channel_per_min, s.rate_workspace_per_hour,
                address_per_min=s.rate_address_per_min,
            ),
            options=EngineOptions(
                default_collection=s.default_collection,
                max_question_chars=s.max_question_chars,
                context_passages=s.context_passages,
                max_chunks_per_document=s.max_chunks_per_document,
                history_token_budget=s.history_token_budget,
            ),
        )


def build_container(settings: Settings, *, check_schema: bool = True, process: str = "cli") -> Container:
    return Container(settings=settings, database=open_database(settings, check_schema=check_schema, process=process))
