"""Rate limits hold exactly under concurrency, say when to retry, and clean up after themselves."""
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.storage.db import connect
from core.errors import RateLimited
from core.storage.models import RateLimit
from core.tenancy.ratelimit import Limit, RateLimiter, RateLimitPolicy
from core.types import SessionKey

LIMIT = Limit("you", "user:test:w:alice", max_requests=7, window_s=60)


def _admit_many(url: str, attempts: int, start, results) -> None:
    """Runs in another process: race for the same user's limit."""
    database = connect(url, pool_size=2)
    limiter = RateLimiter(database.sessions)
    start.wait()
    admitted = 0
    for _ in range(attempts):
        try:
            limiter.admit([LIMIT])
            admitted += 1
        except RateLimited:
            pass
    results.put(admitted)
    database.dispose()


def test_limit_is_exact_under_concurrent_requests_from_several_processes(database, database_url):
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_admit_many, args=(database_url, 10, start, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    admitted = sum(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)

    assert admitted == LIMIT.max_requests


def test_limit_is_exact_under_concurrent_threads(database):
    limiter = RateLimiter(database.sessions)

    def attempt(_: int) -> bool:
        try:
            limiter.admit([LIMIT])
            return True
        except RateLimited:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(attempt, range(40))) == LIMIT.max_requests


def test_refusal_says_when_to_retry_and_counts_nothing_elsewhere(database):
    limiter = RateLimiter(database.sessions)
    now = datetime(2026, 1, 1, 12, 0, 15, tzinfo=timezone.utc)
    user = Limit("you", "user:x", 1, 60)
    workspace = Limit("this workspace", "workspace:x", 100, 3600)
    limiter.admit([user, workspace], now=now)

    with pytest.raises(RateLimited) as refused:
        limiter.admit([user, workspace], now=now + timedelta(seconds=15))

    assert refused.value.retry_after_s == 45
    assert "45 seconds" in str(refused.value) and refused.value.scope == "you"
    with database.sessions() as session:
        hits = dict(session.execute(sa.select(RateLimit.scope, sa.func.cardinality(RateLimit.hits))).all())
    assert hits == {"user:x": 1, "workspace:x": 1}  # the refused request was not counted

    limiter.admit([user, workspace], now=now + timedelta(seconds=61))  # the first hit has left the window


def test_window_slides_so_a_boundary_never_doubles_the_limit(database):
    limiter = RateLimiter(database.sessions)
    user = Limit("you", "user:slide", 3, 60)
    start = datetime(2026, 1, 1, 12, 0, 50, tzinfo=timezone.utc)
    for second in (0, 5, 9):  # three questions just before the minute turns
        limiter.admit([user], now=start + timedelta(seconds=second))

    with pytest.raises(RateLimited) as refused:  # just after it: still three in the last 60 s
        limiter.admit([user], now=start + timedelta(seconds=11))
    assert refused.value.retry_after_s == 49  # when the hit at 12:00:50 leaves the window

    limiter.admit([user], now=start + timedelta(seconds=61))
    with pytest.raises(RateLimited):  # the hits at :55 and :59 are still inside
        limiter.admit([user], now=start + timedelta(seconds=62))


def test_scopes_with_no_recent_hit_are_cleaned_up(database):
    limiter = RateLimiter(database.sessions)
    past = datetime.now(timezone.utc) - timedelta(hours=3)
    limiter.admit([Limit("you", "user:old", 5, 60)], now=past)
    limiter.admit([Limit("you", "user:new", 5, 60)])

    assert limiter.cleanup() == 1
    with database.sessions() as session:
        assert session.scalars(sa.select(RateLimit.scope)).all() == ["user:new"]


def test_engine_enforces_per_user_limits_with_collection_overrides(make_container, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.md").write_text("# Limits\n\nUsers may ask questions.\n")
    container = make_container(rate_user_per_min=2)
    container.ingestor.ingest([str(tmp_path / "d")], collection="default")
    alice = SessionKey("test", "w", "c", "t", user="alice")
    container.engine.ask(alice, "can users ask questions?")
    container.engine.ask(alice, "can users ask questions?")
    with pytest.raises(RateLimited, match="Too many questions from you"):
        container.engine.ask(alice, "can users ask questions?")
    container.engine.ask(SessionKey("test", "w", "c", "t", user="bob"), "can users ask questions?")

    with container.database.sessions.begin() as session:
        session.execute(sa.text("UPDATE collections SET settings = '{\"rate_user_per_min\": 0}'"))
    container.engine.ask(alice, "can users ask questions?")  # 0 turns the per-user window off


def test_policy_turns_windows_off_with_zero():
    limits = RateLimitPolicy(user_per_min=0, channel_per_min=5, workspace_per_hour=0).limits_for(
        SessionKey("p", "w", "c", "t", "u")
    )
    assert [limit.scope for limit in limits] == ["this channel"]
