"""The collaborators the Slack adapter works with, built once per process by ``bots/wiring.py``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import procrastinate

from adapters.slack.afterack import AfterAck
from adapters.slack.clients import SlackClients
from core.questions.engine import Engine
from core.questions.follow_up import FollowUpRule
from core.questions.lifecycle import Lifecycle
from core.questions.suggestions import SuggestedPrompt


@dataclass
class SlackServices:
    lifecycle: Lifecycle  # accept, answer once, deliver once (the answer job is the lifecycle's)
    follow_ups: FollowUpRule
    jobs: procrastinate.App  # opened for deferring (synchronously) in this process: the intake backstop
    clients: SlackClients  # Web API clients per workspace, for jobs
    after_ack: AfterAck
    # (team, enterprise) -> suggested prompts for a new assistant thread (adapters/slack/assistant.py)
    prompts_for: Callable[[str, str | None], list[SuggestedPrompt]] = lambda team, enterprise: []

    @property
    def engine(self) -> Engine:
        return self.lifecycle.engine

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return self.lifecycle.store.sessions
