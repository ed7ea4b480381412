"""Which workspaces may sign in to the web UI, and which collections their members may read.

A Slack workspace or Discord server is known to DocRag when an operator mapped it to a collection
(`docrag workspace map`), or, for Slack, when the app is installed there (OAuth installs). Members
of a known workspace read its mapped collection, else the default one: exactly what the bot
answers them from in chat. Members of any other workspace are refused at sign-in.
"""
from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.storage.models import Collection, WorkspaceCollection

# Tables slack_sdk's installation store keeps (migration 0003): an installed workspace is known.
_INSTALLED_SLACK_TEAMS = sa.text(
    "SELECT team_id FROM slack_installations WHERE team_id = ANY(:teams) "
    "UNION SELECT team_id FROM slack_bots WHERE team_id = ANY(:teams)"
)


def _mapped(session: Session, platform: str, workspaces: list[str]) -> dict[str, str]:
    rows = session.execute(
        sa.select(WorkspaceCollection.workspace, Collection.name)
        .join(Collection, Collection.id == WorkspaceCollection.collection_id)
        .where(WorkspaceCollection.platform == platform, WorkspaceCollection.workspace.in_(workspaces))
    ).all()
    return {workspace: name for workspace, name in rows}


def known_workspaces(session: Session, platform: str, candidates: Iterable[str]) -> tuple[str, ...]:
    """The ``candidates`` DocRag knows on ``platform``, in the order given."""
    return tuple(_known(session, platform, candidates))


def readable_collections(session: Session, platform: str, workspaces: Iterable[str], default: str) -> tuple[str, ...]:
    """The collections members of ``workspaces`` may read: each one's mapping, else ``default``;
    none at all when no workspace is known (any more)."""
    return tuple(dict.fromkeys(name or default for name in _known(session, platform, workspaces).values()))


def _known(session: Session, platform: str, candidates: Iterable[str]) -> dict[str, str | None]:
    """Known workspace -> its mapped collection (None: installed but not mapped), in the order given."""
    wanted = list(dict.fromkeys(candidates))
    if not wanted:
        return {}
    mapped = _mapped(session, platform, wanted)
    installed = set(session.execute(_INSTALLED_SLACK_TEAMS, {"teams": wanted}).scalars()) if platform == "slack" else set()
    return {w: mapped.get(w) for w in wanted if w in mapped or w in installed}
