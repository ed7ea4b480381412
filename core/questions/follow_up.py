"""The follow-up rule every chat door shares: which messages are questions for DocRag.

A direct message, a mention and a message that opens a thread (Slack: channel top level is
filtered by the adapter before) are always questions. An unmentioned reply inside a thread is a
follow-up only in a thread DocRag already takes part in, and not in a channel set to
"mentions only" (``docrag slack channel-mode``).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.tenancy.channels import mentions_only
from core.questions.store import QuestionStore
from core.types import SessionKey


@dataclass(frozen=True)
class Addressing:
    """How a message reached DocRag, as the adapter read it from the platform's event."""

    key: SessionKey
    direct: bool = False  # a DM
    mentioned: bool = False  # DocRag was mentioned for real (not @everyone/@here)
    in_thread: bool = False  # a reply inside an existing thread


class FollowUpRule:
    def __init__(self, sessions: sessionmaker[Session], store: QuestionStore) -> None:
        self.sessions = sessions
        self.store = store

    def is_for_us(self, message: Addressing) -> bool:
        if message.direct or message.mentioned or not message.in_thread:
            return True
        key = message.key
        with self.sessions() as session:
            if mentions_only(session, key.platform, key.workspace, key.channel):
                return False
        return self.store.is_conversation(key)
