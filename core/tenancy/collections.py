"""Collections (knowledge bases) and which chat workspace answers from which."""
from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.errors import EmbedderMismatch, InvalidInput, NotFound
from core.storage.models import Collection, WorkspaceCollection

_VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

# Advisory lock keys, each taken with a collection id: work on one collection that must not overlap
# (ingests run at once from the CLI, API jobs and workers on other machines).
VECTOR_INDEX_LOCK = 7263_0002  # one vector-index build per collection at a time
TERM_STATS_LOCK = 7263_0003  # one term-statistics refresh per collection at a time


def validate_name(name: str) -> str:
    if not _VALID_NAME.match(name):
        raise InvalidInput(
            f"Invalid collection name {name!r}: use letters, digits, '-', '_' or '.', at most 100 characters."
        )
    return name


def lock_collection(session: Session, key: int, collection_id: int) -> None:
    """Wait for, then hold until this transaction ends, the ``key`` lock of one collection."""
    session.execute(sa.text("SELECT pg_advisory_xact_lock(:key, :c)"), {"key": key, "c": collection_id})


def get_collection(session: Session, name: str) -> Collection:
    collection = session.scalar(sa.select(Collection).where(Collection.name == name))
    if collection is None:
        raise NotFound(f"No collection named {name!r}. Ingest documents into it first: docrag ingest PATH --collection {name}")
    return collection


def ensure_collection(session: Session, name: str, *, embedder: str, dimension: int) -> Collection:
    """Return the collection, creating it for this embedder; refuse a different embedder."""
    validate_name(name)
    session.execute(
        insert(Collection)
        .values(name=name, embedder=embedder, dimension=dimension)
        .on_conflict_do_nothing(index_elements=[Collection.name])
    )
    collection = get_collection(session, name)
    check_embedder(collection, embedder, dimension)
    return collection


def check_embedder(collection: Collection, embedder: str, dimension: int) -> None:
    if collection.embedder != embedder or collection.dimension != dimension:
        raise EmbedderMismatch(
            f"Collection {collection.name!r} was indexed with {collection.embedder} ({collection.dimension} dimensions), "
            f"but the configured embedder is {embedder} ({dimension} dimensions). "
            f"Run `docrag reindex --collection {collection.name}` to re-embed it, or change DOCRAG_EMBEDDER back."
        )


def map_workspace(session: Session, platform: str, workspace: str, collection: Collection) -> None:
    statement = insert(WorkspaceCollection).values(
        platform=platform, workspace=workspace, collection_id=collection.id
    )
    session.execute(
        statement.on_conflict_do_update(
            constraint="uq_workspace_collections", set_={"collection_id": statement.excluded.collection_id}
        )
    )


def collection_name_for(session: Session, platform: str, workspace: str, default: str) -> str:
    """The collection a workspace answers from: its mapping, else the default."""
    name = session.scalar(
        sa.select(Collection.name)
        .join(WorkspaceCollection, WorkspaceCollection.collection_id == Collection.id)
        .where(WorkspaceCollection.platform == platform, WorkspaceCollection.workspace == workspace)
    )
    return name or default
