"""The Slack intake backstop job: its name and how it is queued (durably, in PostgreSQL).

The answer job is the lifecycle's own, for every platform (core/questions/lifecycle.py)."""
from __future__ import annotations

from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from core.storage.queue import QUEUE_ANSWERS

INTAKE_TASK = "slack.intake"
# The web process takes a delivery in hand right after acknowledging it (and then deletes the
# backstop job); the backstop is the safety net for a process that died first, so it waits long
# enough never to race it.
INTAKE_BACKSTOP_S = 30
# Below answers: a worker looking for work reaches due answers without walking past backstops.
INTAKE_PRIORITY = -10


def defer_intake(jobs: procrastinate.App, *, kind: str, payload: dict[str, Any], lock: str) -> int | None:
    """Queue the backstop intake job for one delivery; its id, or None when one is already waiting.

    ``lock`` names the message (not the delivery): Slack's retries and the double delivery of a
    mention share it, so while one backstop waits, the others are recognised at once.
    """
    try:
        return jobs.configure_task(
            INTAKE_TASK, queue=QUEUE_ANSWERS, queueing_lock=f"slack-intake-{lock}",
            schedule_in={"seconds": INTAKE_BACKSTOP_S}, priority=INTAKE_PRIORITY,
        ).defer(kind=kind, payload=payload)
    except AlreadyEnqueued:
        return None


def drop_intake(jobs: procrastinate.App, job_id: int) -> None:
    """Delete a backstop that is no longer needed (its delivery was taken in hand), if still waiting."""
    jobs.job_manager.cancel_job_by_id(job_id, delete_job=True)
