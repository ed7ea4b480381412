"""Learning from a resolved thread as a durable job, and the periodic job that expires learned answers.

A door sees a thread end well (a 👍 on DocRag's answer, a ✅ reaction, "resolved" written in the
thread) and, inside the request, only queues a ``Confirmation``: a fast insert, so Slack gets its
acknowledgement at once and nothing is lost if the process dies. A worker then finds the answer
that was accepted (core/ingest/learned_threads.py), asks the platform what it needs to know
about the thread (``ThreadFacts``: the channel's name, whether it is private, a link to the
thread, who confirmed it), and keeps it with ``learn`` (core/ingest/learned.py), which applies the
rules: never from a private conversation, never where the channel turned learning off, never an
answer the documents did not cover. Running the job twice stores the same one document.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.orm import Session, sessionmaker

from core.ingest.learned import DEFAULT_TTL_DAYS, Learned, ResolvedThread, expire_learned, learn
from core.ingest.learned_threads import AcceptedAnswer, Target, accepted_answer
from core.storage.queue import QUEUE_INGEST, database_retry

log = logging.getLogger(__name__)

LEARN_TASK = "learned.learn_thread"
EXPIRE_TASK = "learned.expire_answers"


@dataclass(frozen=True)
class ThreadFacts:
    channel_name: str  # without "#"
    private: bool  # a private channel, group, thread or direct message: never learned
    permalink: str
    confirmed_by: str  # a display name


@dataclass(frozen=True)
class Confirmation:
    """Someone said a thread ended well. ``facts`` when the door knew them at once (Discord's
    gateway cache); otherwise the platform's ``FactsPort`` is asked in the job (Slack's Web API)."""

    target: Target
    user: str  # who confirmed, as the platform names them
    how: str  # "thumbs_up" | "reaction" | "resolved"
    confirmed_at: str  # ISO 8601
    facts: ThreadFacts | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Confirmation:
        facts = data.get("facts")
        return cls(Target(**data["target"]), data["user"], data["how"], data["confirmed_at"],
                   ThreadFacts(**facts) if facts else None)

    @property
    def dedupe_key(self) -> str:
        t = self.target
        return f"learn-{t.platform}-{t.workspace}-{t.answer_id or t.placeholder or t.thread}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


class FactsPort(Protocol):
    """What one platform knows about the thread an accepted answer is in, and how it tells the
    person who confirmed it what became of it."""

    def facts(self, confirmation: Confirmation, answer: AcceptedAnswer) -> ThreadFacts: ...

    def tell(self, confirmation: Confirmation, answer: AcceptedAnswer, outcome: Learned) -> None: ...


def defer_learning(jobs: procrastinate.App, confirmation: Confirmation) -> bool:
    """Queue the learning job; False when one for the same answer is already waiting (a burst of 👍)."""
    try:
        jobs.configure_task(LEARN_TASK, queue=QUEUE_INGEST, queueing_lock=confirmation.dedupe_key).defer(
            confirmation=confirmation.as_json()
        )
    except AlreadyEnqueued:
        return False
    return True


class LearningRunner:
    """The worker side: from a confirmation to a learned document (or the rule that said no)."""

    def __init__(self, sessions: sessionmaker[Session], ingestor: Callable[[], Any],
                 facts: Mapping[str, FactsPort], *, ttl_days: int = DEFAULT_TTL_DAYS) -> None:
        self.sessions = sessions
        self.ingestor = ingestor  # built on first use: a worker that never learns never loads ingestion
        self.facts = facts
        self.ttl_days = ttl_days

    def run(self, confirmation: Confirmation) -> Learned | None:
        with self.sessions() as session:
            answer = accepted_answer(session, confirmation.target)
        if answer is None:  # a reaction on a message that is no DocRag answer nor a question it answered
            log.info("learned.nothing_to_learn target=%s", confirmation.target)
            return None
        facts = confirmation.facts or self._ask_platform(confirmation, answer)
        if facts is None:
            return None
        thread = ResolvedThread(
            key=answer.key, channel_name=facts.channel_name, private=facts.private, question=answer.question,
            answer=answer.answer, permalink=facts.permalink, confirmed_by=facts.confirmed_by,
            confirmed_at=datetime.fromisoformat(confirmation.confirmed_at),
        )
        outcome = learn(self.ingestor(), thread, collection=answer.collection, grounded=answer.grounded,
                        ttl_days=self.ttl_days)
        log.info("learned.outcome answer_id=%s how=%s outcome=%s", answer.answer_id, confirmation.how, outcome.name)
        port = self.facts.get(answer.key.platform)
        if port is not None and confirmation.how != "thumbs_up":  # a 👍 click is thanked by the feedback itself
            try:
                port.tell(confirmation, answer, outcome)
            except Exception:  # what was learned stays learned; the note is a courtesy
                log.warning("learned.tell_failed answer_id=%s", answer.answer_id, exc_info=True)
        return outcome

    def _ask_platform(self, confirmation: Confirmation, answer: AcceptedAnswer) -> ThreadFacts | None:
        port = self.facts.get(answer.key.platform)
        if port is None:
            log.warning("learned.platform_not_configured platform=%s", answer.key.platform)
            return None
        return port.facts(confirmation, answer)


def register_learning_tasks(app: procrastinate.App, runner: LearningRunner) -> None:
    """The learning job, and an hourly expiry of learned answers (each runs once per period
    across any number of workers: procrastinate records the periodic defer, the lock the rest)."""

    @app.task(name=LEARN_TASK, queue=QUEUE_INGEST, retry=database_retry())
    def learn_thread(confirmation: dict[str, Any]) -> None:
        runner.run(Confirmation.from_json(confirmation))

    @app.periodic(cron="43 * * * *", periodic_id="hourly")
    @app.task(name=EXPIRE_TASK, queueing_lock=EXPIRE_TASK, retry=database_retry())
    def expire_answers(timestamp: int) -> None:
        removed = expire_learned(runner.sessions)
        if removed:
            log.info("learned.expired count=%s", removed)
