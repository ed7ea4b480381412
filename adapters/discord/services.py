"""The collaborators the Discord gateway works with, built by ``bots/wiring.py``."""
from __future__ import annotations

from dataclasses import dataclass

from core.questions.follow_up import FollowUpRule
from core.questions.lifecycle import Lifecycle


@dataclass
class DiscordServices:
    lifecycle: Lifecycle
    follow_ups: FollowUpRule
