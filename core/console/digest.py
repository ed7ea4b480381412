"""The weekly digest: an opt-in message to a chat channel with last week's numbers and top 5 gaps.

Exactly once per week and channel, with any number of workers: the weekly periodic job is deferred
once per timestamp (procrastinate), and each channel is *claimed* for the week by one atomic UPDATE
before anything is sent, so two jobs running at once cannot both post. A failed send gives the
claim back (the next run retries); a worker killed between claim and send skips that week rather
than risk posting twice.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from core.console import stats
from core.console.traces import NOT_COVERED, RATE_LIMITED
from core.errors import NotFound
from core.storage.models import Collection, DigestChannel, KnowledgeGaps

log = logging.getLogger(__name__)

TOP_GAPS = 5
# platform, workspace, channel, text -> None; raises when the message could not be posted.
Sender = Callable[[str, str, str, str], None]


def week_of(moment: datetime) -> date:
    """The Monday of ``moment``'s ISO week (UTC): the digest's once-a-week key."""
    day = moment.astimezone(timezone.utc).date()
    return day - timedelta(days=day.weekday())


def subscribe(sessions: sessionmaker[Session], platform: str, workspace: str, channel: str, collection: str) -> None:
    with sessions.begin() as session:
        collection_id = session.scalar(sa.select(Collection.id).where(Collection.name == collection))
        if collection_id is None:
            raise NotFound(f"No collection named {collection!r}.")
        statement = insert(DigestChannel).values(
            platform=platform, workspace=workspace, channel=channel, collection_id=collection_id)
        session.execute(statement.on_conflict_do_update(
            constraint="uq_digest_channels", set_={"collection_id": collection_id}))


def unsubscribe(sessions: sessionmaker[Session], platform: str, workspace: str, channel: str) -> bool:
    with sessions.begin() as session:
        return bool(session.execute(sa.delete(DigestChannel).where(
            DigestChannel.platform == platform, DigestChannel.workspace == workspace,
            DigestChannel.channel == channel)).rowcount)


def compose(session: Session, collection_id: int, name: str, *, today: date) -> str:
    """Last seven days (up to yesterday) in a few lines of chat text."""
    numbers = stats.overview(session, [collection_id], days=7, today=today - timedelta(days=1))
    lines = [
        f"*DocRag weekly digest for {name}*",
        f"{numbers.total} questions: {numbers.share('answered'):.0%} answered, "
        f"{numbers.share(NOT_COVERED):.0%} not covered by the docs, {numbers.share(RATE_LIMITED):.0%} rate-limited. "
        f"Feedback: {sum(numbers.feedback['up'])} 👍, {sum(numbers.feedback['down'])} 👎.",
    ]
    found = session.get(KnowledgeGaps, collection_id)
    topics = (found.topics if found is not None else [])[:TOP_GAPS]
    if topics:
        lines.append("Top questions the docs could not answer:")
        lines += [f"{n}. {t['label']} (asked {t['count']}×)" for n, t in enumerate(topics, start=1)]
    return "\n".join(lines)


def send_due(sessions: sessionmaker[Session], send: Sender, *, now: datetime | None = None) -> int:
    """Send this week's digest to every subscribed channel that has not had it; returns how many sent."""
    now = now or datetime.now(timezone.utc)
    week = week_of(now)
    with sessions() as session:
        due = session.scalars(sa.select(DigestChannel.id).where(
            sa.or_(DigestChannel.last_week.is_(None), DigestChannel.last_week < week))).all()
    sent = 0
    for channel_id in due:
        sent += _send_one(sessions, send, channel_id, week, now.date())
    return sent


def _send_one(sessions: sessionmaker[Session], send: Sender, channel_id: int, week: date, today: date) -> int:
    with sessions.begin() as session:
        claimed = session.execute(
            sa.update(DigestChannel)
            .where(DigestChannel.id == channel_id,
                   sa.or_(DigestChannel.last_week.is_(None), DigestChannel.last_week < week))
            .values(last_week=week)
            .returning(DigestChannel.platform, DigestChannel.workspace, DigestChannel.channel,
                       DigestChannel.collection_id)
        ).one_or_none()
    if claimed is None:  # another worker has it
        return 0
    try:
        with sessions() as session:
            name = session.scalar(sa.select(Collection.name).where(Collection.id == claimed.collection_id))
            text = compose(session, claimed.collection_id, name or "", today=today)
        send(claimed.platform, claimed.workspace, claimed.channel, text)
    except Exception:
        log.warning("console.digest_failed channel_id=%s week=%s", channel_id, week, exc_info=True)
        with sessions.begin() as session:  # give the claim back: the next run retries
            session.execute(sa.update(DigestChannel).where(DigestChannel.id == channel_id,
                                                           DigestChannel.last_week == week)
                            .values(last_week=week - timedelta(days=7)))
        return 0
    log.info("console.digest_sent channel_id=%s week=%s", channel_id, week)
    return 1
