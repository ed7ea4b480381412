"""API keys for the REST API: created once in plaintext, stored as a SHA-256, scoped to collections.

A key is 32 random bytes, so a plain (unsalted) SHA-256 is enough: nobody can brute-force the
preimage, and a lookup by hash stays one indexed query per request.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.tenancy.collections import validate_name
from core.errors import InvalidInput, NotFound
from core.storage.models_web import ApiKey

KEY_PREFIX = "drk_"  # recognisable in a leaked config file or a secret scanner
_SHOWN_CHARS = 8  # of the random part, kept in clear so `apikey list` can tell keys apart


@dataclass(frozen=True)
class KeyInfo:
    """What a request may do with a verified key; never holds the key itself."""

    id: int
    name: str
    prefix: str
    collections: tuple[str, ...]
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    def can_see(self, collection: str) -> bool:
        return collection in self.collections


@dataclass(frozen=True)
class NewKey:
    info: KeyInfo
    key: str  # the plaintext: shown to the operator once, never stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, collections: list[str] | tuple[str, ...], *, name: str = "") -> NewKey:
        names = tuple(dict.fromkeys(validate_name(c) for c in collections))
        if not names:
            raise InvalidInput("An API key needs at least one collection (--collection).")
        if len(name) > 200:
            raise InvalidInput("The key name is longer than 200 characters.")
        secret = secrets.token_urlsafe(32)
        key = KEY_PREFIX + secret
        with self.sessions.begin() as session:
            row = ApiKey(
                name=name, prefix=KEY_PREFIX + secret[:_SHOWN_CHARS], key_hash=hash_key(key), collections=list(names)
            )
            session.add(row)
            session.flush()
            return NewKey(info=_info(row), key=key)

    def verify(self, key: str) -> KeyInfo | None:
        """The key's scope, or None for an unknown or revoked key."""
        if not key.startswith(KEY_PREFIX) or len(key) > 100:
            return None
        with self.sessions() as session:
            row = session.scalar(
                sa.select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
            )
            return _info(row) if row is not None else None

    def revoke(self, key_id: int) -> KeyInfo:
        with self.sessions.begin() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"No API key with id {key_id}. `docrag apikey list` shows them.")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(timezone.utc)
            session.flush()
            return _info(row)

    def list(self) -> list[KeyInfo]:
        with self.sessions() as session:
            return [_info(row) for row in session.scalars(sa.select(ApiKey).order_by(ApiKey.id))]


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        collections=tuple(row.collections),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
