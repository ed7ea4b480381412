"""Every setting DocRag reads, validated once.

Only ``bots/`` calls :func:`load_settings`; everything else receives values as arguments.
Each field names its environment variable explicitly so the README table and the code agree.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigurationError


def env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Storage
    database_url: str | None = Field(None, validation_alias=env("DATABASE_URL"))
    data_dir: Path = Field(Path(".docrag"), validation_alias=env("DOCRAG_DATA_DIR"))
    default_collection: str = Field("default", validation_alias=env("DOCRAG_DEFAULT_COLLECTION"))
    # The embedded server's shared buffers; unset: a quarter of RAM, at most 4 GB (core/storage/embedded.py).
    embedded_shared_buffers_mb: int | None = Field(None, ge=128, validation_alias=env("DOCRAG_PG_SHARED_BUFFERS_MB"))

    # Database pool and time limits (docs/database.md). Unset pool sizes follow the process model.
    db_pool_size: int | None = Field(None, ge=1, le=500, validation_alias=env("DOCRAG_DB_POOL_SIZE"))
    db_max_overflow: int | None = Field(None, ge=0, le=500, validation_alias=env("DOCRAG_DB_MAX_OVERFLOW"))
    db_pool_timeout_s: float = Field(5.0, gt=0, le=300, validation_alias=env("DOCRAG_DB_POOL_TIMEOUT_S"))
    db_pool_recycle_s: int = Field(1800, ge=-1, validation_alias=env("DOCRAG_DB_POOL_RECYCLE_S"))
    db_connect_timeout_s: int = Field(5, ge=2, le=300, validation_alias=env("DOCRAG_DB_CONNECT_TIMEOUT_S"))
    db_request_statement_timeout_ms: int = Field(5_000, ge=0, validation_alias=env("DOCRAG_DB_REQUEST_STATEMENT_TIMEOUT_MS"))
    db_request_lock_timeout_ms: int = Field(2_000, ge=0, validation_alias=env("DOCRAG_DB_REQUEST_LOCK_TIMEOUT_MS"))
    db_job_statement_timeout_ms: int = Field(15_000, ge=0, validation_alias=env("DOCRAG_DB_JOB_STATEMENT_TIMEOUT_MS"))
    db_job_lock_timeout_ms: int = Field(5_000, ge=0, validation_alias=env("DOCRAG_DB_JOB_LOCK_TIMEOUT_MS"))
    db_ingest_statement_timeout_ms: int = Field(600_000, ge=0, validation_alias=env("DOCRAG_DB_INGEST_STATEMENT_TIMEOUT_MS"))
    db_ingest_lock_timeout_ms: int = Field(60_000, ge=0, validation_alias=env("DOCRAG_DB_INGEST_LOCK_TIMEOUT_MS"))
    db_migration_statement_timeout_ms: int = Field(1_800_000, ge=0, validation_alias=env("DOCRAG_DB_MIGRATION_STATEMENT_TIMEOUT_MS"))
    db_migration_lock_timeout_ms: int = Field(5_000, ge=0, validation_alias=env("DOCRAG_DB_MIGRATION_LOCK_TIMEOUT_MS"))

    # Embeddings
    embedder: Literal["hashing", "openai", "sentence-transformers"] = Field(
        "hashing", validation_alias=env("DOCRAG_EMBEDDER")
    )
    embedding_model: str = Field("text-embedding-3-small", validation_alias=env("DOCRAG_EMBEDDING_MODEL"))
    hashing_dimension: int = Field(1024, ge=64, le=2000, validation_alias=env("DOCRAG_HASHING_DIMENSION"))
    st_model_path: Path | None = Field(None, validation_alias=env("DOCRAG_ST_MODEL_PATH"))
    embedding_batch_size: int = Field(64, ge=1, le=2048, validation_alias=env("DOCRAG_EMBEDDING_BATCH_SIZE"))

    # LLM (any OpenAI-compatible chat API)
    openai_api_key: SecretStr | None = Field(None, validation_alias=env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=env("OPENAI_BASE_URL"))
    llm: Literal["auto", "openai", "extractive"] = Field("auto", validation_alias=env("DOCRAG_LLM"))
    llm_model: str = Field("gpt-4o-mini", validation_alias=env("DOCRAG_LLM_MODEL"))
    llm_timeout_s: float = Field(30.0, gt=0, le=600, validation_alias=env("DOCRAG_LLM_TIMEOUT_S"))
    llm_max_retries: int = Field(2, ge=0, le=10, validation_alias=env("DOCRAG_LLM_MAX_RETRIES"))
    llm_max_tokens: int = Field(700, ge=16, le=32000, validation_alias=env("DOCRAG_LLM_MAX_TOKENS"))
    history_token_budget: int = Field(1200, ge=0, le=100000, validation_alias=env("DOCRAG_HISTORY_TOKENS"))

    # Ingestion
    chunk_tokens: int = Field(160, ge=32, le=4000, validation_alias=env("DOCRAG_CHUNK_TOKENS"))
    chunk_overlap: int = Field(40, ge=0, le=1000, validation_alias=env("DOCRAG_CHUNK_OVERLAP"))
    http_timeout_s: float = Field(20.0, gt=0, validation_alias=env("DOCRAG_HTTP_TIMEOUT_S"))
    # A collection gets its own vector index once it has this many chunks (core/search/vector_index.py).
    vector_index_min_chunks: int = Field(2000, ge=1, validation_alias=env("DOCRAG_VECTOR_INDEX_MIN_CHUNKS"))

    # Sources kept in sync (docs/sources.md): git mirrors (unset: <data dir>/sources), how many
    # consecutive syncs must miss a document before it is removed, the delay between two requests
    # to one web host, and the longest wait before retrying a source whose syncs keep failing.
    sources_dir: Path | None = Field(None, validation_alias=env("DOCRAG_SOURCES_DIR"))
    sync_confirm_missing: int = Field(3, ge=1, le=100, validation_alias=env("DOCRAG_SYNC_CONFIRM_MISSING"))
    sync_politeness_s: float = Field(1.0, ge=0, le=60, validation_alias=env("DOCRAG_SYNC_POLITENESS_S"))
    sync_max_backoff_s: int = Field(6 * 3600, ge=60, validation_alias=env("DOCRAG_SYNC_MAX_BACKOFF_S"))

    # Answering
    max_question_chars: int = Field(2000, ge=10, le=100000, validation_alias=env("DOCRAG_MAX_QUESTION_CHARS"))
    context_passages: int = Field(6, ge=1, le=30, validation_alias=env("DOCRAG_CONTEXT_PASSAGES"))
    max_chunks_per_document: int = Field(2, ge=1, le=20, validation_alias=env("DOCRAG_MAX_CHUNKS_PER_DOCUMENT"))
    # How the vector and full-text rankings are combined (see docs/embeddings-and-search.md).
    fusion: Literal["convex", "rrf"] = Field("convex", validation_alias=env("DOCRAG_FUSION"))
    # The vector leg's share of the fused score, 0 (full text only) to 1; unset: measured per embedder kind.
    vector_weight: float | None = Field(None, ge=0.0, le=1.0, validation_alias=env("DOCRAG_VECTOR_WEIGHT"))

    # Rate limits (0 disables a window)
    rate_user_per_min: int = Field(10, ge=0, validation_alias=env("DOCRAG_RATE_USER_PER_MIN"))
    rate_channel_per_min: int = Field(30, ge=0, validation_alias=env("DOCRAG_RATE_CHANNEL_PER_MIN"))
    rate_workspace_per_hour: int = Field(200, ge=0, validation_alias=env("DOCRAG_RATE_WORKSPACE_PER_HOUR"))
    # The playground's limit per client address (unset: the same as per user, so dropping cookies
    # gains nothing), and how many reverse proxies in front of the web process to believe about the
    # client's address and scheme (X-Forwarded-For/-Proto); 0: none, the headers are ignored.
    rate_address_per_min: int | None = Field(None, ge=0, validation_alias=env("DOCRAG_RATE_ADDRESS_PER_MIN"))
    trusted_proxies: int = Field(0, ge=0, le=5, validation_alias=env("DOCRAG_TRUSTED_PROXIES"))

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias=env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=env("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=env("SLACK_APP_TOKEN"))
    slack_client_id: str | None = Field(None, validation_alias=env("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(None, validation_alias=env("SLACK_CLIENT_SECRET"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=env("SLACK_API_URL"))

    # Discord
    discord_token: SecretStr | None = Field(None, validation_alias=env("DISCORD_TOKEN"))
    discord_api_base_url: str = Field("https://discord.com/api/v10", validation_alias=env("DISCORD_API_BASE_URL"))
    discord_gateway_url: str = Field("wss://gateway.discord.gg/", validation_alias=env("DISCORD_GATEWAY_URL"))
    discord_dev_guild_id: int | None = Field(None, validation_alias=env("DISCORD_DEV_GUILD_ID"))
    discord_shard_count: int | None = Field(None, ge=1, validation_alias=env("DISCORD_SHARD_COUNT"))

    # Web sign-in (docs/signing-in.md). The playground is public when DOCRAG_PLAYGROUND_PUBLIC says so;
    # unset, only when served on loopback with no sign-in provider configured and no proxy in front.
    playground_public: bool | None = Field(None, validation_alias=env("DOCRAG_PLAYGROUND_PUBLIC"))
    public_url: str | None = Field(None, validation_alias=env("DOCRAG_PUBLIC_URL"))  # browsers' address of the web UI
    signin_slack_client_id: str | None = Field(None, validation_alias=env("DOCRAG_SIGNIN_SLACK_CLIENT_ID"))
    signin_slack_client_secret: SecretStr | None = Field(None, validation_alias=env("DOCRAG_SIGNIN_SLACK_CLIENT_SECRET"))
    signin_discord_client_id: str | None = Field(None, validation_alias=env("DOCRAG_SIGNIN_DISCORD_CLIENT_ID"))
    signin_discord_client_secret: SecretStr | None = Field(None, validation_alias=env("DOCRAG_SIGNIN_DISCORD_CLIENT_SECRET"))
    session_hours: int = Field(12, ge=1, le=24 * 90, validation_alias=env("DOCRAG_SESSION_HOURS"))
    # Where the web process listens (host:port, comma-separated): set by bots/gunicorn_conf.py, not by hand.
    web_listen: str | None = Field(None, validation_alias=env("DOCRAG_WEB_LISTEN"))

    # Console and privacy (docs/console.md): how long questions and answers are kept (0: forever).
    question_retention_days: int = Field(90, ge=0, le=36500, validation_alias=env("DOCRAG_QUESTION_RETENTION_DAYS"))
    # Answers learned from resolved threads (docs/learned-answers.md) expire this long after confirmation.
    learned_ttl_days: int = Field(180, ge=1, le=3650, validation_alias=env("DOCRAG_LEARNED_TTL_DAYS"))

    # Question lifecycle (core/questions/lifecycle.py): tries of the answer job (crashes included)
    # before the placeholder becomes an apology, and the age past which a late answer is not given.
    answer_max_attempts: int = Field(4, ge=1, validation_alias=env("DOCRAG_ANSWER_MAX_ATTEMPTS"))
    answer_too_old_s: int = Field(3600, ge=10, validation_alias=env("DOCRAG_ANSWER_TOO_OLD_S"))

    # Processes
    embedded_workers: bool = Field(True, validation_alias=env("DOCRAG_EMBEDDED_WORKERS"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias=env("DOCRAG_LOG_LEVEL"))
    log_json: bool = Field(False, validation_alias=env("DOCRAG_LOG_JSON"))

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url_ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @property
    def llm_enabled(self) -> bool:
        if self.llm == "auto":
            return self.openai_api_key is not None or self.openai_base_url is not None
        return self.llm == "openai"

    @property
    def uses_embedded_database(self) -> bool:
        return not self.database_url


def _variable_name(loc: tuple) -> str:
    field = Settings.model_fields.get(str(loc[0])) if loc else None
    alias = field.validation_alias if field else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(loc[0]).upper() if loc else "?"


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and ``.env``); turn validation errors into one readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [f"{_variable_name(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigurationError(
            "Invalid configuration — fix these environment variables (or .env entries): " + "; ".join(problems)
        ) from None
