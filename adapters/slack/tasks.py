"""The Slack job: take in a delivery a web process dropped after acknowledging it (the backstop).

Answering is the lifecycle's job (core/questions/lifecycle.py), the same for every platform; it
delivers through ``SlackDelivery`` (adapters/slack/delivery.py). The backstop is safe to run twice:
the delivery is claimed in the database before it is acted on.
"""
from __future__ import annotations

import logging
from typing import Any

import procrastinate
from slack_sdk.errors import SlackApiError

from adapters.slack.intake import Intake, from_payload
from adapters.slack.queue import INTAKE_TASK
from adapters.slack.services import SlackServices
from core.storage.faults import DatabaseUnavailable
from core.storage.queue import QUEUE_ANSWERS

log = logging.getLogger(__name__)

# Delivery failures that outlive the WebClient's own retries get two more tries, later.
# So does a database that is unavailable (the delivery could not be claimed or recorded).
DELIVERY_RETRY = procrastinate.RetryStrategy(
    max_attempts=2, wait=20, retry_exceptions={SlackApiError, OSError, DatabaseUnavailable}
)


def register_tasks(job_app: procrastinate.App, services: SlackServices) -> None:
    """Register the Slack backstop job on the app a worker runs."""

    @job_app.task(name=INTAKE_TASK, queue=QUEUE_ANSWERS, retry=DELIVERY_RETRY)
    def intake(kind: str, payload: dict[str, Any]) -> None:
        delivery = from_payload(kind, payload)
        client = services.clients.for_team(delivery.team_id, delivery.enterprise_id)
        outcome = Intake(services).take_in_hand(delivery, client, backstop=None, late=True)
        if outcome != "duplicate":  # the web process did not get to it: worth knowing
            log.warning("slack.intake_backstop_used kind=%s outcome=%s", kind, outcome)
