"""The collaborators the Slack adapter works with, built once per process by ``bots/``."""
from __future__ import annotations

from dataclasses import dataclass

import procrastinate
from sqlalchemy.orm import Session, sessionmaker

from adapters.slack.afterack import AfterAck
from adapters.slack.clients import SlackClients
from core.engine import Engine


@dataclass
class SlackServices:
    engine: Engine
    sessions: sessionmaker[Session]
    jobs: procrastinate.App  # opened for deferring (synchronously) in this process
    clients: SlackClients  # Web API clients per workspace, for jobs
    after_ack: AfterAck
