"""Per-channel behaviour chosen by an operator, e.g. "answer follow-ups only when mentioned"."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.storage.models import ChannelSetting


def mentions_only(session: Session, platform: str, workspace: str, channel: str) -> bool:
    """True when thread follow-ups in this channel are answered only if they mention the bot."""
    value = session.scalar(
        sa.select(ChannelSetting.mentions_only).where(
            ChannelSetting.platform == platform,
            ChannelSetting.workspace == workspace,
            ChannelSetting.channel == channel,
        )
    )
    return bool(value)


def set_mentions_only(session: Session, platform: str, workspace: str, channel: str, value: bool) -> None:
    statement = insert(ChannelSetting).values(
        platform=platform, workspace=workspace, channel=channel, mentions_only=value
    )
    session.execute(
        statement.on_conflict_do_update(constraint="uq_channel_settings", set_={"mentions_only": value})
    )


def learns_from_threads(session: Session, platform: str, workspace: str, channel: str) -> bool:
    """True unless the channel's admins turned learning from resolved threads off."""
    value = session.scalar(
        sa.select(ChannelSetting.learn_from_threads).where(
            ChannelSetting.platform == platform,
            ChannelSetting.workspace == workspace,
            ChannelSetting.channel == channel,
        )
    )
    return True if value is None else bool(value)


def set_learn_from_threads(session: Session, platform: str, workspace: str, channel: str, value: bool) -> None:
    statement = insert(ChannelSetting).values(
        platform=platform, workspace=workspace, channel=channel, learn_from_threads=value
    )
    session.execute(
        statement.on_conflict_do_update(constraint="uq_channel_settings", set_={"learn_from_threads": value})
    )
