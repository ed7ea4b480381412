"""The composition root: the one place that turns Settings into concrete objects.

Collaborators are imported where they are built (ingestion pulls in parsers and an HTTP client,
the engine SQLAlchemy's ORM and metrics): a `docrag search` never loads the ingestion stack.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from bots import start_up_gc
from bots.db_budget import connection_profile, embedded_max_connections, warn_if_over_capacity
from core.storage import schema
from core.storage.db import Database, check_pgvector, connect, resolve_database_url
from core.storage.timeouts import Work
from core.search.embeddings import Embedder, build_embedder

if TYPE_CHECKING:
    import procrastinate

    from adapters.discord.services import DiscordServices
    from adapters.slack.clients import SlackClients
    from adapters.slack.services import SlackServices
    from core.config import Settings
    from core.ingest.pipeline import Ingestor
    from core.storage.queue import BackgroundWorker
    from core.answers.llm import Generator
    from core.questions.engine import Engine
    from core.questions.follow_up import FollowUpRule
    from core.questions.lifecycle import Lifecycle
    from core.questions.leases import Leases
    from core.questions.passage_search import PassageSearch
    from core.questions.ports import DeliveryPort
    from core.questions.waiting import WaitingDoor
    from core.search.retrieval import Retriever
    from core.sources.registry import Sources
    from core.sources.sync import SourceSyncer


def open_database(settings: Settings, *, check_schema: bool = True, process: str = "cli") -> Database:
    """Connect (starting the embedded server if needed) with the pool and time limits of this kind
    of process (bots/db_budget.py); upgrade the embedded database's schema, refuse an external
    database's out-of-date one."""
    database = connect(
        resolve_database_url(
            settings.database_url,
            settings.data_dir,
            shared_buffers_mb=settings.embedded_shared_buffers_mb,
            max_connections=embedded_max_connections(settings),
        ),
        profile=connection_profile(settings, process),
    )
    check_pgvector(database.engine)
    if check_schema:
        # The embedded database is DocRag's own: it is upgraded rather than refused.
        schema.ensure_current(database.engine, upgrade_url=None if settings.database_url else database.url)
    if process != "cli":  # a long-running process: say now if the deployment can run out of connections
        warn_if_over_capacity(database.engine, settings)
    start_up_gc.started()  # a `docrag` command's heavy imports are done: collect as usual from here
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
    def retriever(self) -> Retriever:
        from core.search.retrieval import Retriever

        s = self.settings
        return Retriever(sessions=self.database.sessions, embedder=self.embedder, fusion=s.fusion, vector_weight=s.vector_weight)

    @cached_property
    def searcher(self) -> PassageSearch:
        """The engine's search alone, for `docrag search`: no answering stack is imported."""
        from core.questions.passage_search import PassageSearch

        s = self.settings
        return PassageSearch(self.database.sessions, self.retriever, s.max_question_chars, s.max_chunks_per_document)

    @cached_property
    def engine(self) -> Engine:
        """The engine, composed of its pieces; metrics observe it (core/questions/observer.py)."""
        from core.answers.pipeline import AnswerPipeline, PipelineOptions
        from core.questions.admission import Admission
        from core.questions.engine import Engine, EngineOptions
        from core.questions.metrics import PROMETHEUS
        from core.questions.store import QuestionStore
        from core.tenancy.ratelimit import RateLimiter, RateLimitPolicy

        s = self.settings
        sessions = self.database.sessions
        policy = RateLimitPolicy(
            s.rate_user_per_min, s.rate_channel_per_min, s.rate_workspace_per_hour, address_per_min=s.rate_address_per_min
        )
        pipeline = AnswerPipeline(
            sessions=sessions,
            embedder=self.embedder,
            retriever=self.retriever,
            generator=build_generator(s),
            options=PipelineOptions(context_passages=s.context_passages, max_chunks_per_document=s.max_chunks_per_document),
        )
        return Engine(
            store=QuestionStore(sessions),
            admission=Admission(sessions, RateLimiter(sessions), policy, default_collection=s.default_collection),
            pipeline=pipeline,
            options=EngineOptions(
                default_collection=s.default_collection,
                max_question_chars=s.max_question_chars,
                history_token_budget=s.history_token_budget,
            ),
            observer=PROMETHEUS,
        )

    @cached_property
    def ports(self) -> dict[str, DeliveryPort]:
        """A delivery port per configured chat platform (core/questions/ports.py), and the
        caller's port for each door whose caller waits (core/questions/waiting.py)."""
        from core.questions.waiting import WAITING_PLATFORMS, CallerPort

        ports: dict[str, DeliveryPort] = {platform: CallerPort(platform) for platform in WAITING_PLATFORMS}
        slack = self.slack_clients
        if slack is not None:
            from adapters.slack.assistant_status import AssistantStatusDelivery
            from adapters.slack.delivery import SlackDelivery

            ports["slack"] = AssistantStatusDelivery(SlackDelivery(slack), slack)
        if self.settings.discord_token is not None:
            from adapters.discord.delivery import DiscordDelivery
            from core.questions.claims import claim

            sessions = self.database.sessions
            ports["discord"] = DiscordDelivery(
                self.settings.discord_token.get_secret_value(), self.settings.discord_api_base_url,
                once=lambda key: claim(sessions, "discord", key),
            )
        return ports

    @cached_property
    def slack_clients(self) -> SlackClients | None:
        """Web API clients per workspace, or None when no Slack workspace is configured."""
        from adapters.slack.app import oauth_enabled, token_source
        from adapters.slack.clients import SlackClients

        settings = self.settings
        if settings.slack_bot_token is None and not oauth_enabled(settings):
            return None
        return SlackClients(token_source(settings, self.database.engine), settings.slack_api_url)

    @cached_property
    def follow_ups(self) -> FollowUpRule:
        from core.questions.follow_up import FollowUpRule

        return FollowUpRule(self.database.sessions, self.engine.store)

    def lifecycle(self, jobs: procrastinate.App) -> Lifecycle:
        """The question lifecycle, queueing its jobs on ``jobs`` (opened in this process)."""
        from core.questions.lifecycle import Lifecycle, LifecycleOptions

        return Lifecycle(self.engine, jobs, self.ports, LifecycleOptions(
            max_attempts=self.settings.answer_max_attempts,
            too_old=timedelta(seconds=self.settings.answer_too_old_s),
        ))

    def waiting_door(self, jobs: procrastinate.App) -> WaitingDoor:
        """The lifecycle for the REST API, the playground and the CLI, holding its jobs on ``jobs``."""
        from core.questions.waiting import WaitingDoor

        return WaitingDoor(self.engine, jobs, self.leases)

    @cached_property
    def leases(self) -> Leases:
        from core.questions.leases import Leases

        return Leases(self.database.sessions)


def open_job_queue(container: Container) -> procrastinate.App:
    """A job app opened for deferring from ordinary (synchronous) code in this process."""
    from core.storage.queue import build_job_app

    jobs = build_job_app(container.database.conninfo)
    jobs.open()
    return jobs


def build_slack_services(container: Container, lifecycle: Lifecycle) -> SlackServices | None:
    """Slack collaborators, or None when no Slack workspace is configured."""
    from adapters.slack.afterack import AfterAck
    from adapters.slack.services import SlackServices
    from core.questions.suggestions import workspace_prompts

    if container.slack_clients is None:
        return None
    sessions, default = container.database.sessions, container.settings.default_collection

    def prompts_for(team: str, enterprise: str | None) -> list:  # the assistant container's suggested prompts
        return workspace_prompts(sessions, "slack", team, default_collection=default)

    return SlackServices(lifecycle=lifecycle, follow_ups=container.follow_ups, jobs=lifecycle.jobs,
                         clients=container.slack_clients, after_ack=AfterAck(), prompts_for=prompts_for)


def build_discord_services(container: Container, lifecycle: Lifecycle) -> DiscordServices:
    from adapters.discord.services import DiscordServices

    return DiscordServices(lifecycle=lifecycle, follow_ups=container.follow_ups)


def build_worker_app(container: Container, lifecycle: Lifecycle, slack: SlackServices | None) -> procrastinate.App:
    """A job app with every DocRag task registered, for a worker to run; the lifecycle's job app
    is the opened one the tasks defer follow-up jobs with."""
    from adapters.slack.tasks import register_tasks as register_slack_tasks
    from bots.digest_senders import digest_sender
    from bots.housekeeping import register_housekeeping
    from core.console.jobs import register_console_tasks
    from core.ingest.jobs import IngestRunner, register_ingest_task
    from core.ingest.learned_jobs import register_learning_tasks
    from core.sources.jobs import register_source_tasks
    from core.storage.queue import build_job_app
    from core.questions.lifecycle import register_answer_task

    app = build_job_app(container.database.conninfo)
    register_answer_task(app, lifecycle)
    if slack is not None:
        register_slack_tasks(app, slack)
    register_ingest_task(app, IngestRunner(container.database.sessions, container.ingestor))
    register_source_tasks(app, container.syncer, lifecycle.jobs)
    register_housekeeping(app, container, lifecycle.jobs)
    register_learning_tasks(app, learning_runner(container))
    register_console_tasks(
        app, container.database.sessions, container.embedder, container.settings.question_retention_days,
        digest=digest_sender(container.settings, container.database.engine),
    )
    return app


def learning_runner(container: Container):  # type: ignore[no-untyped-def]
    """Learning from resolved threads (core/ingest/learned_jobs.py): Slack is asked about its
    threads in the job; Discord's gateway sends what it knows with the confirmation."""
    from core.ingest.learned_jobs import FactsPort, LearningRunner

    facts: dict[str, FactsPort] = {}
    if container.slack_clients is not None:
        from adapters.slack.learning import SlackThreadFacts

        facts["slack"] = SlackThreadFacts(container.slack_clients)
    return LearningRunner(container.database.sessions, lambda: container.ingestor, facts,
                          ttl_days=container.settings.learned_ttl_days)


def start_background_worker(
    container: Container, lifecycle: Lifecycle, slack: SlackServices | None, *, concurrency: int
) -> BackgroundWorker:
    """Job workers on a thread of this process (the embedded default), recovering lost questions too."""
    from core.storage.queue import BackgroundWorker

    app = build_worker_app(container, lifecycle, slack)
    return BackgroundWorker(app, concurrency=concurrency, sweeps=[lifecycle.requeue_lost]).start()


def build_container(settings: Settings, *, check_schema: bool = True, process: str = "cli") -> Container:
    return Container(settings=settings, database=open_database(settings, check_schema=check_schema, process=process))
