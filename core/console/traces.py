"""Recording what became of each question: the one function the engine calls, once per question.

:func:`record_question` writes the question's trace (standalone query, retrieved passages with
their scores, prompt size, timings), adds it to the daily counts, and counts the documents its
answer cited, all in one transaction. It never raises: the console must not cost anyone an answer.
"""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.storage.models import DocumentCitations, FeedbackDaily, Message, QuestionDaily, QuestionTrace, WorkspacePrivacy
from core.types import Citation, Passage, SessionKey

log = logging.getLogger(__name__)

ANSWERED, NOT_COVERED, RATE_LIMITED, FAILED = "answered", "not_covered", "rate_limited", "failed"
OUTCOMES = (ANSWERED, NOT_COVERED, RATE_LIMITED, FAILED)
# Upper bounds (ms) of the latency buckets the daily counts keep; the last bucket is open-ended.
# Percentiles read from them are "at most this bucket's bound", fine enough for a chart.
LATENCY_BOUNDS_MS = (50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 30000, 60000)
NO_LATENCY = -1  # e.g. a rate-limited question: never answered, no time to report


@dataclass(frozen=True)
class QuestionOutcome:
    """What the engine knows about one question once it is settled."""

    key: SessionKey
    collection_id: int
    outcome: str
    question: str | None = None
    question_id: int | None = None
    answer_id: int | None = None
    standalone_query: str | None = None
    passages: Sequence[Passage] = ()
    citations: Sequence[Citation] = ()
    confidence: float | None = None
    prompt_tokens: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    at: datetime | None = None  # defaults to now; set by tests and the bench


def latency_bucket(total_ms: float | None) -> int:
    if total_ms is None:
        return NO_LATENCY
    return bisect.bisect_left(LATENCY_BOUNDS_MS, total_ms)


def record_question(sessions: sessionmaker[Session], outcome: QuestionOutcome) -> None:
    """Store ``outcome`` for the console; log and carry on if the database refuses."""
    try:
        with sessions.begin() as session:
            _record(session, outcome)
    except SQLAlchemyError:
        log.warning("console.trace_not_recorded question_id=%s", outcome.question_id, exc_info=True)


def stores_question_text(session: Session, platform: str, workspace: str) -> bool:
    choice = session.get(WorkspacePrivacy, (platform, workspace))
    return True if choice is None else choice.store_question_text


def _record(session: Session, outcome: QuestionOutcome) -> None:
    at = outcome.at or datetime.now(timezone.utc)
    keep_text = stores_question_text(session, outcome.key.platform, outcome.key.workspace)
    total_ms = outcome.timings.get("total_ms")
    cited = _cited_documents(outcome) if outcome.outcome == ANSWERED else []
    session.add(QuestionTrace(
        collection_id=outcome.collection_id,
        platform=outcome.key.platform,
        workspace=outcome.key.workspace,
        user_id=outcome.key.user,
        question_id=outcome.question_id,
        answer_id=outcome.answer_id,
        asked_at=at,
        outcome=outcome.outcome,
        confidence=outcome.confidence,
        question=outcome.question if keep_text else None,
        standalone_query=outcome.standalone_query if keep_text else None,
        passages=[_passage_json(p) for p in outcome.passages] if keep_text else [],
        cited_documents=cited,
        prompt_tokens=outcome.prompt_tokens,
        timings=dict(outcome.timings),
        total_ms=total_ms,
    ))
    if not keep_text:
        _forget_texts(session, outcome)
    _count(session, outcome, at.date(), latency_bucket(total_ms))
    _count_citations(session, outcome.collection_id, cited, at)


def _passage_json(passage: Passage) -> dict[str, object]:
    # The passage text stays in document_chunks (and goes with its document); the trace names it.
    return {
        "chunk_id": passage.chunk_id, "document_id": passage.document_id, "title": passage.title,
        "heading": passage.heading, "source": passage.source, "score": round(float(passage.score), 4),
    }


def _cited_documents(outcome: QuestionOutcome) -> list[int]:
    by_source = {p.source: p.document_id for p in outcome.passages}
    return list(dict.fromkeys(by_source[c.source] for c in outcome.citations if c.source in by_source))


def _forget_texts(session: Session, outcome: QuestionOutcome) -> None:
    """An opted-out workspace keeps counts only: the stored question and answer lose their text."""
    ids = [i for i in (outcome.question_id, outcome.answer_id) if i is not None]
    if ids:
        session.execute(sa.update(Message).where(Message.id.in_(ids)).values(text="", search_query=None))


def _count(session: Session, outcome: QuestionOutcome, day: date, bucket: int) -> None:
    statement = insert(QuestionDaily).values(
        collection_id=outcome.collection_id, day=day, platform=outcome.key.platform,
        outcome=outcome.outcome, latency_bucket=bucket, count=1,
    )
    session.execute(statement.on_conflict_do_update(
        index_elements=["collection_id", "day", "platform", "outcome", "latency_bucket"],
        set_={"count": QuestionDaily.count + 1},
    ))


def _count_citations(session: Session, collection_id: int, documents: list[int], at: datetime) -> None:
    if not documents:
        return
    statement = insert(DocumentCitations).values(
        [{"document_id": d, "collection_id": collection_id, "cited": 1, "last_cited_at": at} for d in sorted(documents)]
    )
    session.execute(statement.on_conflict_do_update(
        index_elements=["document_id"],
        set_={"cited": DocumentCitations.cited + 1, "last_cited_at": statement.excluded.last_cited_at},
    ))


def record_vote(session: Session, answer_id: int, previous: int | None, score: int) -> None:
    """Count a 👍/👎 (``score``) that replaces ``previous`` (None: the user's first vote on it), for
    the day the question was asked and for each document the answer cited. Called by the engine in
    the transaction that stores the feedback."""
    trace = session.execute(
        sa.select(QuestionTrace.collection_id, QuestionTrace.asked_at, QuestionTrace.cited_documents)
        .where(QuestionTrace.answer_id == answer_id)
        .limit(1)
    ).one_or_none()
    if trace is None or previous == score:
        return
    up = (score > 0) - (previous is not None and previous > 0)
    down = (score < 0) - (previous is not None and previous < 0)
    day = trace.asked_at.astimezone(timezone.utc).date()
    statement = insert(FeedbackDaily).values(collection_id=trace.collection_id, day=day, up=max(up, 0), down=max(down, 0))
    session.execute(statement.on_conflict_do_update(
        index_elements=["collection_id", "day"],
        set_={"up": FeedbackDaily.up + up, "down": FeedbackDaily.down + down},
    ))
    if trace.cited_documents:
        session.execute(
            sa.update(DocumentCitations)
            .where(DocumentCitations.document_id.in_(trace.cited_documents))
            .values(up=DocumentCitations.up + up, down=DocumentCitations.down + down)
        )
