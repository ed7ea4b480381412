"""One sync of one source: enumerate what changed, ingest it through the pipeline, confirm removals.

* One sync per source at a time, whoever runs it (a worker's job, `docrag source sync`): a
  PostgreSQL advisory lock held for the sync's duration. A second sync finds it taken and returns
  ``busy``; a killed process's lock goes with its connection.
* A failed sync changes nothing it had not finished: the state it continues from (last synced
  commit, HTTP validators) is saved only after a successful sync, the error is recorded, and a
  scheduled source backs off (core/sources/schedule.py).
* Removal rule (docs/sources.md): a document whose file or page is no longer listed is removed only
  after ``confirm_missing`` consecutive successful syncs did not list it; a sync that cannot list
  the source at all fails and counts for nothing. A file deleted by a git commit is removed at once:
  the commit says so, no outage can.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.storage.faults import DatabaseUnavailable
from core.errors import DocRagError, NotFound, new_reference
from core.storage.models import Collection, Document, Source
from core.sources.schedule import next_run, retry_after_failure

if TYPE_CHECKING:
    from core.ingest.pipeline import Ingestor, IngestReport
    from core.ingest.sources import SourceItem

log = logging.getLogger(__name__)

_LOCK_CLASS = 0x5C5  # advisory locks of source syncs: (class, source id)


@dataclass(frozen=True)
class SyncOptions:
    mirrors_dir: Path  # git mirrors, one bare repository per source
    confirm_missing: int = 3  # consecutive syncs that must miss a document before it is removed
    politeness_s: float = 1.0  # between two requests to one web host (robots.txt Crawl-delay wins if longer)
    max_backoff_s: int = 6 * 3600
    http_timeout_s: float = 20


@dataclass
class SyncPlan:
    """What a source has now, as its kind's planner found it."""

    root: str  # the ``root`` of its items: how the pipeline knows them as this source's
    items: list[SourceItem]  # to read (unchanged ones are skipped by content hash or a 304)
    complete: bool  # ``items`` lists every document the source has: the removal rule applies
    deleted: list[str] = field(default_factory=list)  # uris gone for certain: removed at once
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old uri, new uri): the document is kept
    state: dict[str, Any] = field(default_factory=dict)  # saved once the sync succeeded
    counts: dict[str, Any] = field(default_factory=dict)  # kind-specific figures (commit, files changed)
    late_counts: Callable[[], dict[str, Any]] = dict  # figures known once the items were read (304s)
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class SyncResult:
    source_id: int
    status: str  # ok | failed | busy
    counts: dict[str, Any]
    error: str | None = None
    seconds: float = 0.0


# A planner turns a source row (and its saved state) into a plan.
Planner = Callable[[Source, "SyncContext"], SyncPlan]


@dataclass(frozen=True)
class SyncContext:
    options: SyncOptions
    secret: Callable[[str], str | None]  # an environment variable's value, by name (bots passes os.environ.get)
    stored: Callable[[], dict[str, int]]  # the source's documents now (uri -> id), loaded on first use

    @property
    def stored_uris(self) -> frozenset[str]:
        return frozenset(self.stored())


class SourceSyncer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        ingestor: Callable[[], Ingestor],
        *,
        options: SyncOptions,
        secret: Callable[[str], str | None],
        planners: Mapping[str, Planner] | None = None,
    ) -> None:
        self.sessions = sessions
        self._ingestor = ingestor  # built on first use: an unchanged repository never loads the parsers
        self.options = options
        self.secret = secret
        self.planners = dict(planners) if planners is not None else default_planners()

    def sync(self, source_id: int) -> SyncResult:
        with self._locked(source_id) as got:
            if not got:
                return SyncResult(source_id, "busy", {}, "another sync of this source is running")
            return self._sync(source_id)

    def _sync(self, source_id: int) -> SyncResult:
        started = time.perf_counter()
        source, collection = self._begin(source_id)
        stored = _Lazy(lambda: self._stored(source_id))  # an unchanged repository never needs them
        plan: SyncPlan | None = None
        try:
            planner = self.planners.get(source.kind)
            if planner is None:
                raise DocRagError(f"sources of kind {source.kind!r} cannot be synced")
            plan = planner(source, SyncContext(self.options, self.secret, stored))
            counts = self._apply(source, collection, plan, stored)
        except DatabaseUnavailable:
            raise  # not the source's fault: the job's retry strategy runs it again
        except Exception as exc:
            error = self._scrubbed(source, str(exc) if isinstance(exc, DocRagError) else _unexpected(source_id, exc))
            seconds = time.perf_counter() - started
            self._record_failure(source, error, seconds)
            log.warning("source.sync_failed source_id=%s error=%s", source_id, error)
            return SyncResult(source_id, "failed", {}, error, seconds)
        finally:
            if plan is not None:
                plan.close()
        seconds = time.perf_counter() - started
        error = _document_failures(counts)
        self._record_success(source, plan.state, counts, error, seconds)
        log.info("source.synced source_id=%s %s", source_id, {k: v for k, v in counts.items() if k != "failures"})
        return SyncResult(source_id, "ok", counts, error, seconds)

    # -- steps -------------------------------------------------------------------------------------
    def _stored(self, source_id: int) -> dict[str, int]:
        with self.sessions() as session:
            return {uri: doc_id for uri, doc_id in session.execute(
                sa.select(Document.source_uri, Document.id).where(Document.source_id == source_id)
            )}

    def _begin(self, source_id: int) -> tuple[Source, str]:
        with self.sessions.begin() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFound(f"No source with id {source_id}.")
            source.status = "syncing"
            # The scheduler must not queue this source again while it syncs; the outcome sets the real time.
            source.next_sync_at = next_run(source.schedule, datetime.now(timezone.utc))
            collection = session.scalar(sa.select(Collection.name).where(Collection.id == source.collection_id))
            session.expunge(source)
        return source, collection or ""

    def _apply(self, source: Source, collection: str, plan: SyncPlan, stored: Callable[[], dict[str, int]]) -> dict[str, Any]:
        counts: dict[str, Any] = {"read": 0, "added": 0, "updated": 0, "unchanged": 0, "renamed": 0, "removed": 0,
                                  "failed": 0, "skipped": 0, "pending_removal": 0, **plan.counts}
        counts["renamed"] = self._rename(source.id, plan.renamed)
        if plan.items:
            report = self._ingestor().ingest_items(plan.items, collection=collection, sources={plan.root: source.id})
            counts.update(_report_counts(report))
            counts.update(plan.late_counts())
            counts["read"] = len(plan.items) - counts.get("pages_not_modified", 0)  # downloaded or read from disk
        # Documents that failed are read again next time, even if nothing changed them.
        plan.state["retry"] = [uri for uri, _ in counts.get("failures", [])]
        gone = set(plan.deleted)
        if plan.complete:
            gone |= self._confirmed_missing(source, plan, stored, counts)
        counts["removed"] = self._delete(source.id, source.collection_id, gone)
        return counts

    def _confirmed_missing(self, source: Source, plan: SyncPlan, stored: Callable[[], dict[str, int]],
                           counts: dict[str, Any]) -> set[str]:
        """The removal rule: count, per unlisted document, the consecutive syncs that missed it."""
        listed = {item.uri for item in plan.items}
        previously = dict((source.state or {}).get("missing", {}))
        missing: dict[str, int] = {}
        confirmed: set[str] = set()
        for uri in stored().keys() - listed - set(plan.deleted):
            seen_missing = int(previously.get(uri, 0)) + 1
            if seen_missing >= self.options.confirm_missing:
                confirmed.add(uri)
            else:
                missing[uri] = seen_missing
        plan.state["missing"] = missing
        counts["pending_removal"] = len(missing)
        return confirmed

    def _rename(self, source_id: int, renamed: Sequence[tuple[str, str]]) -> int:
        """Give a moved file's document its new identity, so re-reading it updates it in place."""
        done = 0
        with self.sessions.begin() as session:
            for old, new in renamed:
                taken = session.scalar(sa.select(Document.id).where(Document.source_id == source_id, Document.source_uri == new))
                if taken is not None:  # an earlier, interrupted sync already stored the new path
                    session.execute(sa.delete(Document).where(Document.source_id == source_id, Document.source_uri == old))
                    continue
                result = session.execute(
                    sa.update(Document).where(Document.source_id == source_id, Document.source_uri == old).values(source_uri=new)
                )
                done += result.rowcount or 0
        return done

    def _delete(self, source_id: int, collection_id: int, uris: set[str]) -> int:
        if not uris:
            return 0
        from core.search.term_stats import refresh_term_stats

        with self.sessions.begin() as session:
            result = session.execute(
                sa.delete(Document).where(Document.source_id == source_id, Document.source_uri.in_(sorted(uris)))
            )
        refresh_term_stats(self.sessions, collection_id)
        return result.rowcount or 0

    def _record_success(self, source: Source, state: dict[str, Any], counts: dict[str, Any], error: str | None,
                        seconds: float) -> None:
        now = datetime.now(timezone.utc)
        values: dict[str, Any] = dict(
            status="ok", state=state, last_sync_at=now, last_sync_seconds=round(seconds, 3),
            last_counts={k: v for k, v in counts.items() if k != "failures"}, consecutive_failures=0,
            next_sync_at=next_run(source.schedule, now), last_error=error,
        )
        if error:
            values["last_error_at"] = now
        with self.sessions.begin() as session:
            session.execute(sa.update(Source).where(Source.id == source.id).values(**values))

    def _record_failure(self, source: Source, error: str, seconds: float) -> None:
        now = datetime.now(timezone.utc)
        failures = (source.consecutive_failures or 0) + 1
        with self.sessions.begin() as session:
            session.execute(
                sa.update(Source).where(Source.id == source.id).values(
                    status="failed", last_error=error, last_error_at=now, last_sync_seconds=round(seconds, 3),
                    consecutive_failures=failures,
                    next_sync_at=retry_after_failure(source.schedule, failures, now, max_backoff_s=self.options.max_backoff_s),
                )
            )

    def _scrubbed(self, source: Source, message: str) -> str:
        """An error message with no secret value in it (a tool may echo what it was given)."""
        for variable in (source.credentials or {}).values():
            value = self.secret(variable)
            if value and len(value) >= 4:
                message = message.replace(value, "***")
        return message[:2000]

    def _locked(self, source_id: int) -> _AdvisoryLock:
        with self.sessions() as session:
            engine = session.get_bind()
        return _AdvisoryLock(engine, source_id)  # type: ignore[arg-type]


class _AdvisoryLock:
    """``with _AdvisoryLock(engine, id) as got:`` holds the source's sync lock (session-level, on a
    connection of its own) while ``got`` is true; a process that dies releases it with its connection."""

    def __init__(self, engine: sa.Engine, source_id: int) -> None:
        self.engine, self.source_id = engine, source_id
        self.conn: sa.Connection | None = None

    def __enter__(self) -> bool:
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return bool(self.conn.scalar(sa.text("SELECT pg_try_advisory_lock(:c, :s)"), {"c": _LOCK_CLASS, "s": self.source_id}))

    def __exit__(self, *exc: object) -> None:
        assert self.conn is not None
        try:
            self.conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        finally:
            self.conn.close()


class _Lazy:
    """A value computed on the first call, then kept."""

    def __init__(self, compute: Callable[[], dict[str, int]]) -> None:
        self._compute = compute
        self._value: dict[str, int] | None = None

    def __call__(self) -> dict[str, int]:
        if self._value is None:
            self._value = self._compute()
        return self._value


def _report_counts(report: IngestReport) -> dict[str, Any]:
    return {
        "added": report.added, "updated": report.updated, "unchanged": report.unchanged,
        "failed": len(report.failed), "skipped": len(report.skipped), "chunks": report.chunks,
        "failures": [(f.source, f.reason) for f in report.failed],
    }


def _document_failures(counts: dict[str, Any]) -> str | None:
    failures = counts.get("failures") or []
    if not failures:
        return None
    listed = "; ".join(f"{uri}: {reason}" for uri, reason in failures[:5])
    more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
    return f"{len(failures)} document(s) failed: {listed}{more}"


def _unexpected(source_id: int, exc: Exception) -> str:
    reference = new_reference()
    log.error("source.sync_crashed source_id=%s reference=%s", source_id, reference, exc_info=exc)
    return f"unexpected error (reference {reference})"


def default_planners() -> dict[str, Planner]:
    """Each kind's planner, imported when a source of that kind syncs (git needs no HTTP client)."""

    def lazy(module: str, name: str) -> Planner:
        def plan(source: Source, ctx: SyncContext) -> SyncPlan:
            import importlib

            return getattr(importlib.import_module(module), name)(source, ctx)

        return plan

    return {"folder": lazy("core.sources.web", "plan_folder"), "url": lazy("core.sources.web", "plan_url"),
            "git": lazy("core.sources.git", "plan_git"), "confluence": lazy("core.sources.wikis", "plan_confluence"),
            "notion": lazy("core.sources.wikis", "plan_notion")}
