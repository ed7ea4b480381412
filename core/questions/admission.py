"""Which collection answers a question, and whether its asker is within the rate limits."""
from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from core.tenancy.collections import collection_name_for, get_collection
from core.storage.models import Collection
from core.tenancy.ratelimit import RateLimiter, RateLimitPolicy
from core.types import SessionKey


class Admission:
    def __init__(
        self, sessions: sessionmaker[Session], limiter: RateLimiter, policy: RateLimitPolicy, *, default_collection: str
    ) -> None:
        self.sessions = sessions
        self.limiter = limiter
        self.policy = policy
        self.default_collection = default_collection

    def collection_for(self, key: SessionKey, explicit: str | None = None) -> Collection:
        with self.sessions() as session:
            name = explicit or collection_name_for(session, key.platform, key.workspace, self.default_collection)
            collection = get_collection(session, name)
            session.expunge(collection)
            return collection

    def admit(self, key: SessionKey, explicit: str | None = None) -> Collection:
        """The collection that answers ``key``; RateLimited when a limit (its own overrides first) is reached."""
        collection = self.collection_for(key, explicit)
        self.limiter.admit(self.policy.with_overrides(collection.settings or {}).limits_for(key))
        return collection
