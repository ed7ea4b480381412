"""Rate limits persisted in PostgreSQL, exact under concurrency.

Sliding windows: "10 a minute" means at most 10 admitted requests in any 60 seconds, never 20
across a window boundary. Each scope keeps one row with the times of its recent requests.
Admission is a single ``INSERT .. ON CONFLICT DO UPDATE .. WHERE <fewer than the limit in the
window> RETURNING`` per scope, all scopes in one transaction: the row lock serialises racing
requests (threads or processes), and a refusal in any scope rolls back the requests already
counted in the others.
"""
from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.errors import RateLimited
from core.storage.models import RateLimit
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
    # Per client address, where a door knows one (the playground); None: the same as per user, so
    # that a visitor who drops their cookie (a new user id) gains nothing.
    address_per_min: int | None = None

    def with_overrides(self, overrides: dict) -> RateLimitPolicy:
        address = overrides.get("rate_address_per_min", self.address_per_min)
        return RateLimitPolicy(
            user_per_min=int(overrides.get("rate_user_per_min", self.user_per_min)),
            channel_per_min=int(overrides.get("rate_channel_per_min", self.channel_per_min)),
            workspace_per_hour=int(overrides.get("rate_workspace_per_hour", self.workspace_per_hour)),
            address_per_min=None if address is None else int(address),
        )

    def limits_for(self, key: SessionKey) -> list[Limit]:
        base = f"{key.platform}:{key.workspace}"
        limits = [
            Limit("you", f"user:{base}:{key.user}", self.user_per_min, 60),
            Limit("this channel", f"channel:{base}:{key.channel}", self.channel_per_min, 60),
            Limit("this workspace", f"workspace:{base}", self.workspace_per_hour, 3600),
        ]
        if key.address:
            per_address = self.user_per_min if self.address_per_min is None else self.address_per_min
            limits.insert(1, Limit("your network address", f"address:{base}:{address_block(key.address)}",
                                   per_address, 60))
        # A limit of 0 turns that window off.
        return [limit for limit in limits if limit.max_requests > 0]


# Drops the hits that left the window, appends this one, and does so only while the window holds
# fewer than the limit; RETURNING yields no row for a refusal. Times come from the caller so that
# tests and every process agree on what "now" is.
_ADMIT = sa.text("""
    INSERT INTO rate_limits (scope, hits, expires_at)
    VALUES (:scope, ARRAY[CAST(:now AS timestamptz)], :expires_at)
    ON CONFLICT (scope) DO UPDATE
    SET hits = array_append(
            ARRAY(SELECT hit FROM unnest(rate_limits.hits) AS hit WHERE hit > :since ORDER BY hit),
            CAST(:now AS timestamptz)),
        expires_at = :expires_at
    WHERE (SELECT count(*) FROM unnest(rate_limits.hits) AS hit WHERE hit > :since) < :max_requests
    RETURNING 1
""")


class RateLimiter:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def admit(self, limits: list[Limit], *, now: datetime | None = None) -> None:
        """Count one request against every limit, or raise RateLimited and count nothing."""
        now = now or datetime.now(timezone.utc)
        with self.sessions() as session:
            for limit in limits:
                window = timedelta(seconds=limit.window_s)
                admitted = session.execute(_ADMIT, {
                    "scope": limit.key, "now": now, "since": now - window,
                    "expires_at": now + window, "max_requests": limit.max_requests,
                }).first()
                if admitted is None:
                    retry_after = _seconds_until_admitted(session, limit, now)
                    session.rollback()
                    raise RateLimited(
                        f"Too many questions from {limit.scope} right now: "
                        f"please ask again in {_human_seconds(retry_after)}.",
                        retry_after_s=retry_after,
                        scope=limit.scope,
                    )
            session.commit()

    def cleanup(self, *, now: datetime | None = None) -> int:
        """Delete scopes with no hit left in their window; called from a periodic job."""
        now = now or datetime.now(timezone.utc)
        with self.sessions.begin() as session:
            return session.execute(sa.delete(RateLimit).where(RateLimit.expires_at < now)).rowcount or 0


def address_block(address: str) -> str:
    """What one client controls: an IPv4 address, or an IPv6 /64 (a home or a server is handed a whole
    /64, so counting single IPv6 addresses would let a client rotate through them)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (e.g. a Unix socket peer): count it as it is
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _seconds_until_admitted(session: Session, limit: Limit, now: datetime) -> int:
    """When enough hits leave the window for one more request (the row is locked by the refusal)."""
    hits = session.scalar(sa.select(RateLimit.hits).where(RateLimit.scope == limit.key)) or []
    window = timedelta(seconds=limit.window_s)
    in_window = sorted(hit for hit in hits if hit > now - window)
    # The window admits again once only max_requests - 1 of these remain in it.
    leaving = in_window[max(0, len(in_window) - limit.max_requests)] if in_window else now
    return max(1, math.ceil((leaving + window - now).total_seconds()))


def _human_seconds(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
