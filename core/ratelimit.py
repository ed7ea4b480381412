"""Rate limits persisted in PostgreSQL, exact under concurrency.

Fixed windows: one counter row per scope and window. Admission is a single
``INSERT .. ON CONFLICT DO UPDATE .. WHERE count < limit RETURNING`` per scope, all scopes in one
transaction: the row lock serialises racing requests (threads or processes), and a refusal in
any scope rolls back the increments already made in the others.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from core.errors import RateLimited
from core.models import RateLimit
from core.types import SessionKey


@dataclass(frozen=True)
class Limit:
    scope: str  # what the user is told is limited: "you", "this channel", "this workspace"
    key: str
    max_requests: int
    window_s: int


@dataclass(frozen=True)
class RateLimitPolicy:
    user_per_min: int = 10
    channel_per_min: int = 30
    workspace_per_hour: int = 200

    def with_overrides(self, overrides: dict) -> RateLimitPolicy:
        return RateLimitPolicy(
            user_per_min=int(overrides.get("rate_user_per_min", self.user_per_min)),
            channel_per_min=int(overrides.get("rate_channel_per_min", self.channel_per_min)),
            workspace_per_hour=int(overrides.get("rate_workspace_per_hour", self.workspace_per_hour)),
        )

    def limits_for(self, key: SessionKey) -> list[Limit]:
        base = f"{key.platform}:{key.workspace}"
        limits = [
            Limit("you", f"user:{base}:{key.user}", self.user_per_min, 60),
            Limit("this channel", f"channel:{base}:{key.channel}", self.channel_per_min, 60),
            Limit("this workspace", f"workspace:{base}", self.workspace_per_hour, 3600),
        ]
        # A limit of 0 turns that window off.
        return [limit for limit in limits if limit.max_requests > 0]


class RateLimiter:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def admit(self, limits: list[Limit], *, now: datetime | None = None) -> None:
        """Count one request against every limit, or raise RateLimited and count nothing."""
        now = now or datetime.now(timezone.utc)
        with self.sessions() as session:
            for limit in limits:
                start, end = _window(now, limit.window_s)
                statement = insert(RateLimit).values(scope=limit.key, window_start=start, window_end=end, count=1)
                admitted = session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[RateLimit.scope, RateLimit.window_start],
                        set_={"count": RateLimit.count + 1},
                        where=RateLimit.count < limit.max_requests,
                    ).returning(RateLimit.count)
                ).first()
                if admitted is None:
                    session.rollback()
                    retry_after = max(1, math.ceil((end - now).total_seconds()))
                    raise RateLimited(
                        f"Too many questions from {limit.scope} right now: "
                        f"please ask again in {_human_seconds(retry_after)}.",
                        retry_after_s=retry_after,
                        scope=limit.scope,
                    )
            session.commit()

    def cleanup(self, *, now: datetime | None = None) -> int:
        """Delete windows that ended; called from a periodic job."""
        now = now or datetime.now(timezone.utc)
        with self.sessions.begin() as session:
            return session.execute(sa.delete(RateLimit).where(RateLimit.window_end < now)).rowcount or 0


def _window(now: datetime, window_s: int) -> tuple[datetime, datetime]:
    epoch = int(now.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % window_s, timezone.utc)
    return start, start + timedelta(seconds=window_s)


def _human_seconds(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
