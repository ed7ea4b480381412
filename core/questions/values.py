"""Typed values of the question lifecycle: roles, where a question lives, and what is delivered.

A door hands the lifecycle a ``Where`` (how to reach the question's thread, serialisable so a
worker in another process can reach it after a restart); the lifecycle hands the door's
delivery port a ``Reply``: an ``Answer``, an ``Apology`` with a reference id, or a ``Notice``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

from core.types import Answer, SessionKey


class Role(str, enum.Enum):
    """Who wrote a stored message. ``ERROR`` records that a question got an apology instead."""

    USER = "user"
    ASSISTANT = "assistant"
    ERROR = "error"


@dataclass(frozen=True)
class Where:
    """How to reach a question's thread on its platform: plain strings only, stored as JSON.

    Slack: ``{"team": ..., "channel": ..., "thread_ts": ...}``; Discord: ``{"channel": ...}`` or
    ``{"application": ..., "token": ...}`` for an interaction. Only the platform's port reads it.
    """

    platform: str
    fields: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.fields[name]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.fields.get(name, default)

    def as_json(self) -> dict[str, Any]:
        return {"platform": self.platform, **self.fields}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Where:
        fields = {k: str(v) for k, v in data.items() if k != "platform" and v is not None}
        return cls(str(data["platform"]), fields)


@dataclass(frozen=True)
class Apology:
    """No answer, and why, with the reference id an operator finds in the log."""

    reference: str
    reason: str


class NoticeKind(str, enum.Enum):
    LIMIT = "limit"  # rate limited: when to ask again
    INFO = "info"  # the question was refused (invalid, no collection, ...)


@dataclass(frozen=True)
class Notice:
    text: str
    kind: NoticeKind = NoticeKind.INFO


Reply = Union[Answer, Apology, Notice]


@dataclass(frozen=True)
class Question:
    """A stored question as the lifecycle sees it."""

    id: int
    key: SessionKey
    text: str
    conversation_id: int
    collection_id: int
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    """The delivery record of a question: where it is, its placeholder, attempts so far."""

    question_id: int
    where: Where
    placeholder: str | None
    attempts: int
    delivered: bool
    created_at: datetime

    @property
    def platform(self) -> str:
        return self.where.platform
