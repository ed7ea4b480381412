"""Signed-in web sessions, kept in PostgreSQL (server-side: signing out or expiring ends them for good).

The browser holds a random token; the table holds only its SHA-256 (like API keys: 32 random bytes
need no salt, and the lookup stays one indexed query per request). A session carries who signed in
and through which workspaces; what those workspaces may read is decided per request
(core/tenancy/viewer_access.py), never frozen into the session.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.storage.models import Base, created_at_column


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    user_name: Mapped[str] = mapped_column(String(200), server_default="")
    workspaces: Mapped[list[Any]] = mapped_column(server_default="[]")
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


@dataclass(frozen=True)
class Identity:
    """Who a sign-in provider vouched for: the provider ("slack", "discord"), the user's id there,
    a display name, and the workspaces (Slack team ids, Discord guild ids) that grant access."""

    provider: str
    user_id: str
    name: str
    workspaces: tuple[str, ...]


@dataclass(frozen=True)
class StoredSession:
    id: int
    identity: Identity
    expires_at: datetime


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class WebSessions:
    def __init__(self, sessions: sessionmaker[Session], *, lifetime: timedelta) -> None:
        self.sessions = sessions
        self.lifetime = lifetime

    def open(self, identity: Identity) -> str:
        """A new session for ``identity``; returns the token for the cookie (never stored)."""
        token = secrets.token_urlsafe(32)
        with self.sessions.begin() as session:
            session.add(WebSession(
                token_hash=hash_token(token), provider=identity.provider, user_id=identity.user_id,
                user_name=identity.name[:200], workspaces=list(identity.workspaces), expires_at=_now() + self.lifetime,
            ))
        return token

    def find(self, token: str) -> StoredSession | None:
        """The live session for a cookie's token; None for an unknown, ended or expired one."""
        with self.sessions() as session:
            row = session.scalar(sa.select(WebSession).where(
                WebSession.token_hash == hash_token(token), WebSession.expires_at > sa.func.now()
            ))
            if row is None:
                return None
            identity = Identity(row.provider, row.user_id, row.user_name, tuple(str(w) for w in row.workspaces))
            return StoredSession(id=row.id, identity=identity, expires_at=row.expires_at)

    def close(self, token: str) -> None:
        """Sign out: the token stops working everywhere, at once."""
        with self.sessions.begin() as session:
            session.execute(sa.delete(WebSession).where(WebSession.token_hash == hash_token(token)))

    def purge_expired(self) -> int:
        with self.sessions.begin() as session:
            result = session.execute(sa.delete(WebSession).where(WebSession.expires_at <= sa.func.now()))
            return int(result.rowcount or 0)
