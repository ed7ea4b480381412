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
    wanted = list(dict.fromkeys(candidates))
    if not wanted:
        return ()
    known = set(_mapped(session, platform, wanted))
    if platform == "slack":
        known.update(session.execute(_INSTALLED_SLACK_TEAMS, {"teams": wanted}).scalars())
    return tuple(w for w in wanted if w in known)


def readable_collections(session: Session, platform: str, workspaces: Iterable[str], default: str) -> tuple[str, ...]:
    """The collections members of ``workspaces`` may read: each one's mapping, else ``default``;
    none at all when no workspace is known (any more)."""
    known = known_workspaces(session, platform, workspaces)
    mapped = _mapped(session, platform, list(known))
    return tuple(dict.fromkeys(mapped.get(w, default) for w in known))
