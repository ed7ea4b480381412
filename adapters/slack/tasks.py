"""Background jobs: answer an accepted question in Slack, take in deliveries a web process
dropped (the intake backstop), and find accepted questions whose answer job was lost.

Every job is safe to run twice (a retry, a worker that died and was replaced): the engine
returns the stored answer, and deliveries and replies are claimed in the database before they
are acted on, so a question gets one reply however often its jobs run.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import procrastinate
import sqlalchemy as sa
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from adapters.slack.events import PLATFORM
from adapters.slack.intake import Intake, from_payload
from adapters.slack.messages import post, replace
from adapters.slack.queue import ANSWER_TASK, INTAKE_TASK, RECOVER_TASK, defer_answer
from adapters.slack.render import Reply, render_answer, render_apology, render_notice
from adapters.slack.services import SlackServices
from core.storage.faults import DatabaseUnavailable
from core.storage.timeouts import Work, database_work
from core.dedupe import claim, release
from core.engine import Engine
from core.errors import DocRagError, RateLimited, UpstreamUnavailable, new_reference
from core.storage.queue import QUEUE_ANSWERS
from core.storage.models import Message

log = logging.getLogger(__name__)

# A question still unanswered this long after it was accepted has lost its job (the process died
# between accepting it and queueing the job); older than RECOVER_WITHIN it is no longer worth it.
RECOVER_AFTER = timedelta(minutes=2)
RECOVER_WITHIN = timedelta(days=1)
# Delivery failures that outlive the WebClient's own retries get two more tries, later.
# So does a database that is unavailable (the reply could not be claimed or recorded).
DELIVERY_RETRY = procrastinate.RetryStrategy(
    max_attempts=2, wait=20, retry_exceptions={SlackApiError, OSError, DatabaseUnavailable}
)


def register_tasks(job_app: procrastinate.App, services: SlackServices) -> None:
    """Register the Slack jobs on the app a worker runs."""

    @job_app.task(name=ANSWER_TASK, queue=QUEUE_ANSWERS, retry=DELIVERY_RETRY)
    def answer(
        question_id: int,
        team_id: str,
        channel: str,
        thread_ts: str,
        placeholder_ts: str | None = None,
        enterprise_id: str | None = None,
    ) -> None:
        client = services.clients.for_team(team_id, enterprise_id)
        with database_work(Work.ANSWER_JOB):
            reply = compose_reply(services.engine, question_id)
            deliver(services.sessions, client, question_id, channel=channel, thread_ts=thread_ts,
                    placeholder_ts=placeholder_ts, reply=reply)

    @job_app.task(name=INTAKE_TASK, queue=QUEUE_ANSWERS, retry=DELIVERY_RETRY)
    def intake(kind: str, payload: dict[str, Any]) -> None:
        delivery = from_payload(kind, payload)
        client = services.clients.for_team(delivery.team_id, delivery.enterprise_id)
        outcome = Intake(services).take_in_hand(delivery, client, backstop=None)
        if outcome != "duplicate":  # the web process did not get to it: worth knowing
            log.warning("slack.intake_backstop_used kind=%s outcome=%s", kind, outcome)

    @job_app.periodic(cron="* * * * *", periodic_id="slack")
    @job_app.task(name=RECOVER_TASK, queue=QUEUE_ANSWERS, queueing_lock=RECOVER_TASK)
    def recover(timestamp: int) -> None:
        recover_pending(services)


def compose_reply(engine: Engine, question_id: int) -> Reply:
    """The answer, or a reply that says why there is none: a question never goes unanswered."""
    try:
        return render_answer(engine.answer(question_id))
    except UpstreamUnavailable as exc:
        log.warning("slack.answer_upstream_failed question_id=%s reference=%s", question_id, exc.reference)
        service = exc.service[:1].lower() + exc.service[1:]  # "the language model", mid-sentence
        return render_apology(exc.reference, f"{service} is unavailable right now")
    except RateLimited as exc:
        return render_notice(str(exc), emoji=":hourglass:")
    except DocRagError as exc:
        return render_notice(str(exc), emoji=":warning:")
    except Exception:
        reference = new_reference()
        log.exception("slack.answer_failed question_id=%s reference=%s", question_id, reference)
        return render_apology(reference, "something went wrong on my side")


def deliver(
    sessions: sessionmaker[Session],
    client: WebClient,
    question_id: int,
    *,
    channel: str,
    thread_ts: str,
    placeholder_ts: str | None,
    reply: Reply,
) -> bool:
    """Post the reply once: replace the placeholder, or post in the thread. False if already done."""
    key = f"reply:{question_id}"
    if not claim(sessions, PLATFORM, key):
        log.info("slack.reply_already_delivered question_id=%s", question_id)
        return False
    try:
        if not (placeholder_ts and replace(client, channel, placeholder_ts, reply)):
            post(client, channel, reply, thread_ts=thread_ts)
    except Exception:
        release(sessions, PLATFORM, key)  # nothing was posted: let the retry do it
        raise
    log.info("slack.reply_delivered question_id=%s channel=%s", question_id, channel)
    return True


def recover_pending(services: SlackServices, *, now: datetime | None = None) -> int:
    """Queue answer jobs for accepted questions that lost theirs; returns how many."""
    pending = services.engine.pending_questions(PLATFORM, limit=500)
    stale = _accepted_between(services.sessions, [p.message_id for p in pending], now or datetime.now(timezone.utc))
    recovered = 0
    for question in pending:
        if question.message_id in stale and claim(services.sessions, PLATFORM, f"recover:{question.message_id}"):
            defer_answer(
                services.jobs,
                question_id=question.message_id,
                team_id=question.key.workspace,
                channel=question.key.channel,
                thread_ts=question.key.thread,
            )
            recovered += 1
    if recovered:
        log.warning("slack.recovered_questions count=%s", recovered)
    return recovered


def _accepted_between(sessions: sessionmaker[Session], ids: list[int], now: datetime) -> set[int]:
    if not ids:
        return set()
    with sessions() as session:
        rows = session.scalars(
            sa.select(Message.id).where(
                Message.id.in_(ids),
                Message.created_at < now - RECOVER_AFTER,
                Message.created_at > now - RECOVER_WITHIN,
            )
        )
        return set(rows)
