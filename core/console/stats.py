"""The console's read side: counts, shares, feedback, latency, documents and traces, always scoped
to the collections the viewer may see (``collection_ids``; an empty list sees nothing)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.console.traces import LATENCY_BOUNDS_MS, NO_LATENCY, OUTCOMES
from core.storage.models import (
    Collection,
    Document,
    DocumentCitations,
    Feedback,
    FeedbackDaily,
    KnowledgeGaps,
    Message,
    QuestionDaily,
    QuestionTrace,
)

PERCENTILES = (50, 90, 95, 99)


@dataclass
class Overview:
    days: list[date]
    per_door: dict[str, list[int]]  # door -> questions per day, aligned with ``days``
    outcomes: dict[str, int]  # outcome -> questions in the window
    feedback: dict[str, list[int]]  # "up"/"down" -> per day
    latency_ms: dict[int, int | None]  # percentile -> upper bound of its bucket (None: open-ended)
    total: int = 0

    def share(self, outcome: str) -> float:
        return self.outcomes.get(outcome, 0) / self.total if self.total else 0.0


def collection_ids(session: Session, names: Sequence[str]) -> dict[int, str]:
    rows = session.execute(sa.select(Collection.id, Collection.name).where(Collection.name.in_(list(names))))
    return {row.id: row.name for row in rows}


def overview(session: Session, ids: Sequence[int], *, days: int, today: date | None = None) -> Overview:
    today = today or datetime.now(timezone.utc).date()
    first = today - timedelta(days=days - 1)
    axis = [first + timedelta(days=n) for n in range(days)]
    index = {day: n for n, day in enumerate(axis)}
    result = Overview(days=axis, per_door={}, outcomes={o: 0 for o in OUTCOMES},
                      feedback={"up": [0] * days, "down": [0] * days}, latency_ms={})
    buckets = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    rows = session.execute(
        sa.select(QuestionDaily.day, QuestionDaily.platform, QuestionDaily.outcome, QuestionDaily.latency_bucket,
                  sa.func.sum(QuestionDaily.count).label("n"))
        .where(QuestionDaily.collection_id.in_(list(ids)), QuestionDaily.day >= first, QuestionDaily.day <= today)
        .group_by(QuestionDaily.day, QuestionDaily.platform, QuestionDaily.outcome, QuestionDaily.latency_bucket)
    )
    for row in rows:
        n = int(row.n)
        result.per_door.setdefault(row.platform, [0] * days)[index[row.day]] += n
        result.outcomes[row.outcome] = result.outcomes.get(row.outcome, 0) + n
        result.total += n
        if row.latency_bucket != NO_LATENCY:
            buckets[row.latency_bucket] += n
    result.latency_ms = _percentiles(buckets)
    for row in _feedback_per_day(session, ids, first):
        position = index.get(row.day)
        if position is not None:
            result.feedback["up"][position] += int(row.up)
            result.feedback["down"][position] += int(row.down)
    return result


def _percentiles(buckets: list[int]) -> dict[int, int | None]:
    total = sum(buckets)
    found: dict[int, int | None] = {}
    if not total:
        return found
    for p in PERCENTILES:
        wanted, running = total * p / 100, 0
        for bucket, n in enumerate(buckets):
            running += n
            if running >= wanted:
                found[p] = LATENCY_BOUNDS_MS[bucket] if bucket < len(LATENCY_BOUNDS_MS) else None
                break
    return found


def _feedback_per_day(session: Session, ids: Sequence[int], first: date) -> Iterator[Any]:
    return iter(session.execute(
        sa.select(FeedbackDaily.day, sa.func.sum(FeedbackDaily.up).label("up"), sa.func.sum(FeedbackDaily.down).label("down"))
        .where(FeedbackDaily.collection_id.in_(list(ids)), FeedbackDaily.day >= first)
        .group_by(FeedbackDaily.day)
    ))


@dataclass(frozen=True)
class DocumentStats:
    id: int
    collection: str
    title: str
    link: str
    cited: int
    up: int
    down: int


def documents(session: Session, ids: dict[int, str]) -> list[DocumentStats]:
    """Every document of the collections, most cited first; never-cited ones have ``cited == 0``."""
    rows = session.execute(
        sa.select(Document.id, Document.collection_id, Document.title, Document.link,
                  sa.func.coalesce(DocumentCitations.cited, 0).label("cited"),
                  sa.func.coalesce(DocumentCitations.up, 0).label("up"),
                  sa.func.coalesce(DocumentCitations.down, 0).label("down"))
        .outerjoin(DocumentCitations, DocumentCitations.document_id == Document.id)
        .where(Document.collection_id.in_(list(ids)))
        .order_by(sa.desc("cited"), Document.title, Document.id)
    )
    return [
        DocumentStats(row.id, ids[row.collection_id], row.title, row.link, int(row.cited), int(row.up), int(row.down))
        for row in rows
    ]


@dataclass(frozen=True)
class QuestionRow:
    id: int
    asked_at: datetime
    collection: str
    platform: str
    outcome: str
    question: str | None
    confidence: float | None
    total_ms: float | None
    feedback: int  # net score: 👍 minus 👎


def questions(
    session: Session, ids: dict[int, str], *, outcome: str | None = None, before: int | None = None, limit: int = 50
) -> list[QuestionRow]:
    """The latest questions, newest first; ``before`` pages on (a trace id)."""
    query = _question_rows(ids).order_by(QuestionTrace.id.desc()).limit(limit)
    if outcome:
        query = query.where(QuestionTrace.outcome == outcome)
    if before is not None:
        query = query.where(QuestionTrace.id < before)
    return [_question_row(row, ids) for row in session.execute(query)]


def all_questions(session: Session, ids: dict[int, str], *, batch: int = 2000) -> Iterator[QuestionRow]:
    """Every stored question of the collections, oldest first, streamed (the CSV export)."""
    after = 0
    while True:
        rows = session.execute(_question_rows(ids).where(QuestionTrace.id > after).order_by(QuestionTrace.id).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            yield _question_row(row, ids)
        after = rows[-1].id


def _question_rows(ids: dict[int, str]) -> sa.Select:
    net = (
        sa.select(sa.func.coalesce(sa.func.sum(Feedback.score), 0))
        .where(Feedback.message_id == QuestionTrace.answer_id)
        .scalar_subquery()
        .label("feedback")
    )
    return sa.select(
        QuestionTrace.id, QuestionTrace.asked_at, QuestionTrace.collection_id, QuestionTrace.platform,
        QuestionTrace.outcome, QuestionTrace.question, QuestionTrace.confidence, QuestionTrace.total_ms, net,
    ).where(QuestionTrace.collection_id.in_(list(ids)))


def _question_row(row: Any, ids: dict[int, str]) -> QuestionRow:
    return QuestionRow(row.id, row.asked_at, ids[row.collection_id], row.platform, row.outcome, row.question,
                       row.confidence, row.total_ms, int(row.feedback or 0))


@dataclass
class Trace:
    row: QuestionTrace
    collection: str
    answer: str | None
    feedback: list[tuple[str, int]] = field(default_factory=list)  # (platform, score); never who


def trace(session: Session, trace_id: int, ids: dict[int, str]) -> Trace | None:
    """One question's full trace, or None when it is not in the viewer's collections."""
    row = session.get(QuestionTrace, trace_id)
    if row is None or row.collection_id not in ids:
        return None
    answer = session.scalar(sa.select(Message.text).where(Message.id == row.answer_id)) if row.answer_id else None
    votes = session.execute(
        sa.select(Feedback.platform, Feedback.score).where(Feedback.message_id == row.answer_id).order_by(Feedback.id)
    ).all() if row.answer_id else []
    return Trace(row, ids[row.collection_id], answer, [(v.platform, int(v.score)) for v in votes])


def gaps(session: Session, ids: dict[int, str]) -> list[tuple[str, KnowledgeGaps]]:
    rows = session.scalars(sa.select(KnowledgeGaps).where(KnowledgeGaps.collection_id.in_(list(ids)))).all()
    return [(ids[row.collection_id], row) for row in rows]


def all_collection_names(session: Session) -> tuple[str, ...]:
    return tuple(session.scalars(sa.select(Collection.name).order_by(Collection.name)))
