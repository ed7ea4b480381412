"""Prometheus metrics: questions and answers by platform, stage latencies, errors, queue depth.

Counting happens in :class:`PrometheusObserver`, which the engine tells of each step of the
lifecycle, so every door is counted the same way without knowing about metrics. Under
gunicorn (several processes) prometheus_client keeps values in files under
``PROMETHEUS_MULTIPROC_DIR``; :func:`exposition` then merges them (pass that directory).
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

from core.errors import DocRagError, RateLimited, UpstreamUnavailable
from core.storage.queue import QUEUE_ANSWERS, QUEUE_INGEST
from core.observability.registry import REGISTRY
from core.types import Answer

log = logging.getLogger(__name__)

QUESTIONS = Counter("docrag_questions", "Questions accepted, by platform.", ["platform"], registry=REGISTRY)
ANSWERS = Counter(
    "docrag_answers", "Answers given, by platform and whether the documents covered the question.",
    ["platform", "grounded"], registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "docrag_stage_seconds", "Time spent answering, per stage (retrieval, llm, rewrite, total).", ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60), registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "docrag_llm_errors", "LLM or embedding API failures that outlived the retries, by service.", ["service"],
    registry=REGISTRY,
)
PLATFORM_ERRORS = Counter(
    "docrag_platform_api_errors", "Failed calls to a chat platform's API (Slack, Discord), by platform.",
    ["platform"], registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "docrag_rate_limited", "Questions refused by a rate limit, by platform and scope.", ["platform", "scope"],
    registry=REGISTRY,
)
_STAGES = {"retrieval_ms": "retrieval", "llm_ms": "llm", "rewrite_ms": "rewrite", "total_ms": "total"}
_QUEUES = (QUEUE_ANSWERS, QUEUE_INGEST)


def platform_api_error(platform: str) -> None:
    """Adapters call this when a platform API call fails for good."""
    PLATFORM_ERRORS.labels(platform).inc()


def observe_answer(platform: str, answer: Answer) -> None:
    ANSWERS.labels(platform, "true" if answer.grounded else "false").inc()
    for key, stage in _STAGES.items():
        if key in answer.timings_ms:
            STAGE_SECONDS.labels(stage).observe(answer.timings_ms[key] / 1000)


class PrometheusObserver:
    """Counts the lifecycle as the engine reports it (core/questions/observer.py): no subclass
    of the engine, no copy of its collaborators, no query of its own."""

    def accepted(self, platform: str, question_id: int) -> None:
        QUESTIONS.labels(platform).inc()

    def refused(self, platform: str, error: DocRagError) -> None:
        if isinstance(error, RateLimited):
            RATE_LIMITED.labels(platform, error.scope).inc()

    def answered(self, platform: str, answer: Answer) -> None:
        observe_answer(platform, answer)

    def failed(self, platform: str, error: DocRagError) -> None:
        if isinstance(error, UpstreamUnavailable):
            UPSTREAM_ERRORS.labels(error.service).inc()


PROMETHEUS = PrometheusObserver()


class QueueDepth:
    """Jobs waiting per queue, read from PostgreSQL at scrape time (so every process agrees)."""

    def __init__(self, db: sa.Engine) -> None:
        self.db = db

    def describe(self) -> list[Metric]:
        return []  # no query at registration time

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("docrag_queue_depth", "Background jobs waiting to run, by queue.", labels=["queue"])
        counts = dict.fromkeys(_QUEUES, 0)
        try:
            counts.update(self._waiting())
        except sa.exc.SQLAlchemyError:  # a scrape must not fail because the database is down
            log.warning("metrics.queue_depth_unavailable", exc_info=True)
            return
        for queue, count in sorted(counts.items()):
            family.add_metric([queue], count)
        yield family

    def _waiting(self) -> dict[str, int]:
        with self.db.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT queue_name, count(*) FROM procrastinate_jobs WHERE status = 'todo' GROUP BY queue_name")
            )
            return {queue: int(count) for queue, count in rows}


class _Forward:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


def exposition(*collectors: Any, multiprocess_dir: str | None = None) -> tuple[bytes, str]:
    """The text a Prometheus scrape reads, and its content type."""
    registry = CollectorRegistry()
    if multiprocess_dir:
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(_Forward(REGISTRY))
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
