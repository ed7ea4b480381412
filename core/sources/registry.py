"""The ``sources`` table as an API: add, list, show and remove sources; record what `docrag ingest` read.

A source is what was ingested and how. Its credentials are the *names* of environment variables
(``{"token": "DOCS_REPO_TOKEN"}``): the registry stores and shows names only, and only the
syncing process looks the values up. Removing a source deletes exactly its documents (the
foreign key cascades) and refreshes the collection's term statistics.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urldefrag, urlsplit, urlunsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.tenancy.collections import ensure_collection
from core.errors import DocumentError, InvalidInput, NotFound
from core.storage.models import Collection, Document, Source
from core.sources.schedule import next_run, validate_schedule

KINDS = ("folder", "url", "git", "confluence", "notion")  # "upload": API uploads and documents from before sources existed
OPTIONS = {
    "folder": {"base_url", "include_root"},
    "url": {"delay_s", "max_pages"},
    "git": {"branch", "include", "exclude", "web_url", "host", "link_ref"},
    "confluence": set(),
    "notion": {"api_url"},  # the API's address, for a proxy (or a test server)
}
CREDENTIAL_ROLES: dict[str, set[str]] = {
    "folder": set(), "url": set(), "git": {"token", "username", "ssh_key"},
    "confluence": {"token", "email"},  # e-mail + API token (Cloud), or a personal access token alone
    "notion": {"token"},  # an internal integration's secret
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)")  # git@github.com:owner/repo.git


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    target: str
    collection: str
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)  # role -> environment variable name
    schedule: str | None = None


@dataclass(frozen=True)
class SourceView:
    id: int
    collection: str
    name: str
    kind: str
    target: str  # without any password a URL carried
    options: dict[str, Any]
    credentials: dict[str, str]  # names of environment variables, never their values
    schedule: str | None
    status: str
    documents: int
    next_sync_at: datetime | None
    last_sync_at: datetime | None
    last_sync_seconds: float | None
    last_counts: dict[str, Any]
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


class Sources:
    def __init__(self, sessions: sessionmaker[Session], *, embedder: Callable[[], tuple[str, int]]) -> None:
        self.sessions = sessions
        # (name, dimension) of the configured embedder, for a collection a new source creates;
        # asked for only then, so listing sources never loads a model.
        self._embedder = embedder

    def _ensure_collection(self, session: Session, name: str) -> Collection:
        embedder, dimension = self._embedder()
        return ensure_collection(session, name, embedder=embedder, dimension=dimension)

    def add(self, spec: SourceSpec, *, added_by: str | None = None, now: datetime | None = None) -> SourceView:
        """``added_by="api"``: an API key holder's source, whose syncs reach public addresses only."""
        kind, target = normalised_target(spec.kind, spec.target)
        options = _checked_options(kind, spec.options)
        if added_by:
            options["added_by"] = added_by
        credentials = _checked_credentials(kind, spec.credentials)
        schedule = validate_schedule(spec.schedule)
        with self.sessions.begin() as session:
            coll = self._ensure_collection(session, spec.collection)
            name = _unique_name(session, coll.id, spec.name or default_name(kind, target, options), explicit=bool(spec.name))
            source = Source(
                collection_id=coll.id, name=name, kind=kind, target=target, options=options,
                credentials=credentials, schedule=schedule,
                next_sync_at=next_run(schedule, now or datetime.now(timezone.utc)),
            )
            session.add(source)
            session.flush()
            source_id = source.id
        return self.get(source_id)

    def list(self, collections: Sequence[str] | None = None) -> list[SourceView]:
        query = _view_query().order_by(Source.id)
        if collections is not None:
            query = query.where(Collection.name.in_(list(collections)))
        with self.sessions() as session:
            return [_view(*row) for row in session.execute(query)]

    def get(self, source_id: int) -> SourceView:
        with self.sessions() as session:
            row = session.execute(_view_query().where(Source.id == source_id)).first()
        if row is None:
            raise NotFound(f"No source with id {source_id}.")
        return _view(*row)

    def remove(self, source_id: int) -> SourceView:
        """Delete the source and exactly its documents."""
        from core.search.term_stats import refresh_term_stats

        view = self.get(source_id)
        with self.sessions.begin() as session:
            collection_id = session.scalar(sa.delete(Source).where(Source.id == source_id).returning(Source.collection_id))
        if collection_id is not None:
            refresh_term_stats(self.sessions, collection_id)
        return view

    def record_ingest(
        self, collection: str, targets: Sequence[str], *, base_url: str | None = None, include_root: str | None = None
    ) -> dict[str, int]:
        """The source of each `docrag ingest` target (found, or created): ``{root: source id}``."""
        from core.ingest.sources import target_root

        for target in targets:  # nothing is recorded for a run that cannot start
            if urlsplit(target_root(target)).scheme not in ("http", "https") and not os.path.exists(target_root(target)):
                raise DocumentError(f"no such file or folder: {target}")
        roots: dict[str, int] = {}
        with self.sessions.begin() as session:
            coll = self._ensure_collection(session, collection)
            for target in targets:
                root = target_root(target)
                kind = "url" if urlsplit(root).scheme in ("http", "https") else "folder"
                options = _folder_options(kind, base_url, include_root)
                source = session.scalar(
                    sa.select(Source).where(Source.collection_id == coll.id, Source.kind == kind, Source.target == root)
                )
                if source is None:
                    source = Source(
                        collection_id=coll.id, name=_unique_name(session, coll.id, root[-200:], explicit=False),
                        kind=kind, target=root, options=options,
                    )
                    session.add(source)
                    session.flush()
                elif options:  # what this run was told holds for the source's next syncs too
                    source.options = {**(source.options or {}), **options}
                roots[root] = source.id
        return roots


# -- targets, options, names ------------------------------------------------------------------------
def _folder_options(kind: str, base_url: str | None, include_root: str | None) -> dict[str, str]:
    if kind != "folder":
        return {}
    options = {"base_url": base_url, "include_root": include_root and os.path.abspath(os.path.expanduser(include_root))}
    return {key: value for key, value in options.items() if value}


def normalised_target(kind: str, target: str) -> tuple[str, str]:
    """(kind, target) as stored: absolute paths for local ones, URLs without fragments."""
    kind = (kind or "").strip().lower()
    if kind == "sitemap":
        kind = "url"
    if kind not in KINDS:
        raise InvalidInput(f"unknown source kind {kind!r}; one of {', '.join(KINDS)}")
    target = (target or "").strip()
    if not target:
        raise InvalidInput("a source needs a target (a path, a URL or a repository)")
    if kind == "folder":
        path = os.path.abspath(os.path.expanduser(target))
        if not os.path.exists(path):
            raise InvalidInput(f"no such file or folder: {target}")
        return kind, PurePosixPath(path).as_posix()
    if kind == "url":
        url = urldefrag(target)[0]
        if urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).hostname:
            raise InvalidInput(f"not an http(s) URL: {target}")
        return kind, url
    if kind in ("confluence", "notion"):
        from core.sources.wikis import normalised_wiki_target

        return kind, normalised_wiki_target(kind, target)
    if "://" in target or _SCP_LIKE.match(target):
        scheme = urlsplit(target).scheme.lower() if "://" in target else "ssh"
        if scheme not in ("https", "http", "ssh", "git", "file"):
            raise InvalidInput(f"unsupported repository address {redacted(target)} (https, ssh, git, file or a path)")
        return kind, target
    path = os.path.abspath(os.path.expanduser(target))
    if not os.path.isdir(path):
        raise InvalidInput(f"no repository at {target}")
    return kind, path


def redacted(url: str) -> str:
    """A URL without the password (or token) it may carry."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None and not (parts.username and "@" in parts.netloc and parts.scheme.startswith("http")):
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def default_name(kind: str, target: str, options: Mapping[str, Any]) -> str:
    if kind == "url":
        parts = urlsplit(target)
        return ((parts.hostname or "") + parts.path.rstrip("/"))[:200] or target[:200]
    if kind == "notion":
        return "notion" if target == "workspace" else f"notion-{target[:8]}"
    tail = target.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if kind == "git":
        tail = tail.removesuffix(".git")
        if options.get("branch"):
            tail += f"@{options['branch']}"
    return tail[:200] or kind


def _unique_name(session: Session, collection_id: int, name: str, *, explicit: bool) -> str:
    taken = set(session.scalars(sa.select(Source.name).where(Source.collection_id == collection_id)))
    if name not in taken:
        return name
    if explicit:
        raise InvalidInput(f"collection already has a source named {name!r}")
    n = 2
    while f"{name[:190]}-{n}" in taken:
        n += 1
    return f"{name[:190]}-{n}"


def _checked_options(kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(options) - OPTIONS[kind]
    if unknown:
        raise InvalidInput(f"unknown option(s) for a {kind} source: {', '.join(sorted(unknown))}")
    checked = {k: v for k, v in options.items() if v not in (None, "", [], ())}
    for key in ("include", "exclude"):
        if key in checked:
            if isinstance(checked[key], str):
                checked[key] = [checked[key]]
            if not all(isinstance(g, str) and g for g in checked[key]):
                raise InvalidInput(f"{key}: a list of glob patterns")
            checked[key] = list(checked[key])
    if checked.get("link_ref") not in (None, "branch", "commit"):
        raise InvalidInput("link_ref: 'branch' or 'commit'")
    if checked.get("host") not in (None, "github", "gitlab", "gitea"):
        raise InvalidInput("host: 'github', 'gitlab' or 'gitea'")
    return checked


def _checked_credentials(kind: str, credentials: Mapping[str, str]) -> dict[str, str]:
    for role, variable in credentials.items():
        if role not in CREDENTIAL_ROLES[kind]:
            allowed = ", ".join(sorted(CREDENTIAL_ROLES[kind])) or "none"
            raise InvalidInput(f"credential {role!r} is not used by a {kind} source (allowed: {allowed})")
        if not isinstance(variable, str) or not _ENV_NAME.match(variable):
            raise InvalidInput(f"credential {role}: the NAME of an environment variable, e.g. DOCS_TOKEN")
    return dict(credentials)


# -- reading ---------------------------------------------------------------------------------------
def _view_query() -> sa.Select:
    documents = (
        sa.select(sa.func.count()).where(Document.source_id == Source.id).correlate(Source).scalar_subquery()
    )
    return sa.select(Source, Collection.name, documents).join(Collection, Collection.id == Source.collection_id)


def _view(source: Source, collection: str, documents: int) -> SourceView:
    return SourceView(
        id=source.id, collection=collection, name=source.name, kind=source.kind, target=redacted(source.target),
        options=dict(source.options or {}), credentials=dict(source.credentials or {}), schedule=source.schedule,
        status=source.status, documents=documents or 0, next_sync_at=source.next_sync_at,
        last_sync_at=source.last_sync_at, last_sync_seconds=source.last_sync_seconds,
        last_counts=dict(source.last_counts or {}), last_error=source.last_error, last_error_at=source.last_error_at,
        consecutive_failures=source.consecutive_failures or 0, created_at=source.created_at,
    )
