"""What the console (core/console/traces.py) is told of each question once it is settled:
answered, not covered, failed or refused by a rate limit. Told once per question, never raises."""
from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from core.answers.pipeline import Composed
from core.console import traces
from core.console.traces import QuestionOutcome, record_question
from core.ingest.chunking import count_tokens
from core.questions.values import Question
from core.types import Answer, SessionKey


def trace_answered(sessions: sessionmaker[Session], question: Question, composed: Composed, stored: Answer) -> None:
    outcome = traces.ANSWERED if stored.grounded else traces.NOT_COVERED
    found = composed.found
    passages = found.passages if found is not None else []
    record_question(sessions, QuestionOutcome(
        key=question.key,
        collection_id=question.collection_id,
        outcome=outcome,
        question=question.text,
        question_id=question.id,
        answer_id=stored.message_id,
        standalone_query=composed.query,
        passages=passages,
        citations=stored.citations,
        confidence=found.best_similarity if found is not None else None,
        # What the prompt carried besides its fixed instructions: the question and the passages.
        prompt_tokens=count_tokens(question.text + " " + " ".join(p.text for p in passages)) if composed.generated else None,
        timings=dict(stored.timings_ms),
    ))


def trace_failed(sessions: sessionmaker[Session], question: Question) -> None:
    record_question(sessions, QuestionOutcome(
        key=question.key, collection_id=question.collection_id, outcome=traces.FAILED,
        question=question.text, question_id=question.id,
    ))


def trace_rate_limited(sessions: sessionmaker[Session], key: SessionKey, collection_id: int, text: str) -> None:
    record_question(sessions, QuestionOutcome(key, collection_id, traces.RATE_LIMITED, question=text))
