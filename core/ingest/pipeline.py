"""Ingestion: sources -> bytes -> (unchanged? stop) -> sections -> chunks -> vectors -> one transaction.

Idempotent by content hash: an unchanged document costs one dictionary lookup and writes
nothing. A changed document's chunks are replaced inside one transaction, so readers see the old
version or the new one, never neither nor both. Failures are per document: reported, skipped,
and nothing of that document is written.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Self, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.errors import DocRagError, DocumentError, NothingToIndex
from core.ingest import STORE_WRITERS
from core.ingest.chunk_copy import ChunkRow, copy_chunks
from core.ingest.chunking import Chunk, chunk_sections
from core.ingest.loaders import included_files, load_document
from core.ingest.sources import NotModified, SourceItem, discover, target_root
from core.search.embeddings import Embedder
from core.search.term_stats import refresh_term_stats
from core.search.vector_index import VECTOR_INDEX_MIN_CHUNKS, ensure_vector_index
from core.storage.models import Collection, Document, DocumentChunk
from core.tenancy.collections import ensure_collection, get_collection

log = logging.getLogger(__name__)

# Bump when loading or chunking changes in a way that should re-chunk unchanged files.
# 2: fenced code with its language; inline headings marked "## Title".
# 3: call-out boxes (MkDocs, Docusaurus, MyST, pymdownx) as labelled text; shortcut reference links;
#    one- and two-row Markdown tables with each cell named by its header.
# 4: MyST roles ({meth}`~click.Context.invoke`) and rST default-role references (`load <Schema.load>`)
#    as the built page shows them; fenced code inside Markdown block quotes and list items stays code;
#    inline code kept as code spans; rST literalinclude read (inside the ingested root); HTML page
#    chrome (DocBook, SQLite) dropped and PDF outlines, running heads and hyphenation handled; long
#    tables chunked between rows.
# 5: Markdown snippets (pymdownx, --8<--), FastAPI's {* docs_src *} code includes and MyST
#    {include} read in; MyST directive fences (```{note}, ```{code-block} python, {eval-rst}...)
#    read as the built page shows them.
# 6: content tabs of rST and MyST (sphinx-tabs, sphinx-inline-tabs, sphinx-design) lead with their label.
CHUNKER_VERSION = "6"
# Documents are embedded in groups so remote embedders get full batches.
EMBED_GROUP_CHUNKS = 256

# Called after each document with (documents done, documents in total).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ChunkingOptions:
    # ~160 tokens (~700 characters): measured better than 200-280 for both BM25 and vectors,
    # and inside MiniLM's 256-wordpiece window, so nothing is cut off before embedding.
    max_tokens: int = 160
    overlap_tokens: int = 40

    def fingerprint(self) -> str:
        return f"chunker={CHUNKER_VERSION};max={self.max_tokens};overlap={self.overlap_tokens}"


@dataclass
class Failure:
    """A document that did not land (``failed``) or had nothing to index (``skipped``), and why."""

    source: str
    reason: str


@dataclass
class IngestReport:
    collection: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[Failure] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)
    # Documents that landed without some of the files they include (not found inside the include
    # root): their examples are missing from the answers until a wider --include-root reads them.
    includes_not_found: list[Failure] = field(default_factory=list)
    chunks: int = 0  # chunks written by this run
    seconds: float = 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["failed"] = [asdict(f) for f in self.failed]
        data["skipped"] = [asdict(f) for f in self.skipped]
        data["includes_not_found"] = [asdict(f) for f in self.includes_not_found]
        data["seconds"] = round(self.seconds, 3)
        return data


@dataclass
class _Prepared:
    item: SourceItem
    content_hash: str
    title: str
    chunks: list[Chunk]
    existing_id: int | None
    vectors: list = field(default_factory=list)


@dataclass(frozen=True)
class _Known:
    id: int
    content_hash: str
    version: str | None  # SourceItem.version as stored, with the chunker's fingerprint


@dataclass
class _Stored:
    added: int = 0
    updated: int = 0
    chunks: int = 0
    failed: list[Failure] = field(default_factory=list)


class _StoreBehind:
    """Stores groups of embedded documents in writer threads while the caller prepares the next.

    Why: loading, chunking and embedding are Python (one core); storing is mostly PostgreSQL
    work (HNSW and GIN upkeep), and psycopg2 releases the GIL while it waits for the server. With
    several writers on their own connections, the server's work spreads over the cores. At most
    ``writers`` groups are in flight, so memory stays bounded; each document is still stored in
    its own transaction (documents of different groups may commit out of order). A storing error
    is raised to the caller at its next ``submit`` or at exit, ending the ingest as it did when
    storing was inline.
    """

    def __init__(
        self, store: Callable[[list[_Prepared], int], _Stored], collection_id: int, report: IngestReport, writers: int
    ):
        self._store = store
        self._collection_id = collection_id
        self._report = report
        self._writers = writers
        self._executor = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="ingest-store")
        self._pending: deque[Future[_Stored]] = deque()

    def __enter__(self) -> Self:
        return self

    def submit(self, group: list[_Prepared]) -> None:
        while len(self._pending) >= self._writers:
            self._collect(self._pending.popleft())
        if group:
            self._pending.append(self._executor.submit(self._store, group, self._collection_id))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            while exc_type is None and self._pending:
                self._collect(self._pending.popleft())
        finally:
            self._executor.shutdown(wait=True)  # on an error too: never leave a transaction running

    def _collect(self, pending: Future[_Stored]) -> None:
        stored = pending.result()
        self._report.chunks += stored.chunks
        self._report.added += stored.added
        self._report.updated += stored.updated
        self._report.failed.extend(stored.failed)


class Ingestor:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        embedder: Embedder,
        chunking: ChunkingOptions,
        http_timeout_s: float = 20,
        vector_index_min_chunks: int = VECTOR_INDEX_MIN_CHUNKS,
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.chunking = chunking
        self.http_timeout_s = http_timeout_s
        self.vector_index_min_chunks = vector_index_min_chunks  # see core/search/vector_index.py

    def ingest(
        self,
        targets: Sequence[str],
        *,
        collection: str,
        prune: bool = False,
        base_url: str | None = None,
        include_root: str | None = None,
        progress: Progress | None = None,
        announce: Callable[[str], None] | None = None,
        sources: Mapping[str, int] | None = None,
    ) -> IngestReport:
        items = list(discover(targets, base_url=base_url, include_root=include_root, http_timeout_s=self.http_timeout_s))
        return self.ingest_items(
            items,
            collection=collection,
            prune_roots={target_root(t) for t in targets} if prune else None,
            progress=progress,
            announce=announce,
            sources=sources,
        )

    def ingest_items(
        self,
        items: Sequence[SourceItem],
        *,
        collection: str,
        prune_roots: set[str] | None = None,
        progress: Progress | None = None,
        announce: Callable[[str], None] | None = None,
        sources: Mapping[str, int] | None = None,
    ) -> IngestReport:
        """Ingest already discovered items (files, pages, uploads, generated corpora).

        ``progress(done, total)`` follows the documents; ``announce(text)`` tells of a long step
        after them (building the collection's vector index). ``sources`` maps an item's ``root``
        to the id of the source (core/sources) its document belongs to; unchanged documents are
        given to it too.
        """
        started = time.perf_counter()
        report = IngestReport(collection=collection)
        with self.sessions.begin() as session:
            coll = ensure_collection(
                session, collection, embedder=self.embedder.name, dimension=self.embedder.dimension
            )
            collection_id = coll.id
            known = self._known_documents(session, collection_id)

        seen: set[str] = set()
        store_group = functools.partial(self._store_group, sources=sources or {})
        with _StoreBehind(store_group, collection_id, report, STORE_WRITERS) as store_behind:
            group: list[_Prepared] = []
            for done, item in enumerate(items, start=1):
                seen.add(item.uri)
                prepared = self._prepare(item, known, report)
                if prepared is not None:
                    group.append(prepared)
                    if sum(len(p.chunks) for p in group) >= EMBED_GROUP_CHUNKS:
                        store_behind.submit(self._embedded(group, report))
                        group = []
                if progress:
                    progress(done, len(items))
            store_behind.submit(self._embedded(group, report))
        if sources:
            self._claim_for_sources(collection_id, items, sources)

        if prune_roots is not None:
            report.removed = self._prune(collection_id, prune_roots | {item.root for item in items}, seen)
        if report.added or report.updated or report.removed:
            refresh_term_stats(self.sessions, collection_id)
            ensure_vector_index(self.sessions, collection_id, min_chunks=self.vector_index_min_chunks, announce=announce)
        report.seconds = time.perf_counter() - started
        log.info("ingest.done %s", {k: v for k, v in report.as_dict().items() if k not in ("failed", "skipped")})
        return report

    def _claim_for_sources(self, collection_id: int, items: Sequence[SourceItem], sources: Mapping[str, int]) -> None:
        """Unchanged documents were not stored again: give them to their source as well."""
        by_source: dict[int, list[str]] = {}
        for item in items:
            if item.root in sources:
                by_source.setdefault(sources[item.root], []).append(item.uri)
        with self.sessions.begin() as session:
            for source_id, uris in by_source.items():
                session.execute(
                    sa.update(Document)
                    .where(
                        Document.collection_id == collection_id,
                        Document.source_uri.in_(uris),
                        Document.source_id.is_distinct_from(source_id),
                    )
                    .values(source_id=source_id)
                )

    def _known_documents(self, session: Session, collection_id: int) -> dict[str, _Known]:
        rows = session.execute(
            sa.select(Document.source_uri, Document.id, Document.content_hash, Document.meta["version"].astext).where(
                Document.collection_id == collection_id
            )
        )
        return {uri: _Known(doc_id, digest, version) for uri, doc_id, digest, version in rows}

    def _version(self, item: SourceItem) -> str | None:
        # A new chunker must re-read every document, whatever its source says of it.
        return f"{self.chunking.fingerprint()}:{item.version}" if item.version else None

    def _prepare(self, item: SourceItem, known: dict[str, _Known], report: IngestReport) -> _Prepared | None:
        existing = known.get(item.uri)
        if existing and existing.version is not None and existing.version == self._version(item):
            report.unchanged += 1
            return None
        try:
            try:
                data, content_type = item.fetch()
            except NotModified:  # a conditional request said so: not even downloaded
                report.unchanged += 1
                return None
            digest = self._content_hash(item, data)
            if existing and existing.content_hash == digest:
                report.unchanged += 1
                return None
            loaded = load_document(
                data,
                name=item.name,
                content_type=content_type,
                source_path=(item.local_file or Path(item.uri)) if item.folder else None,
                include_root=item.folder,
            )
            chunks = chunk_sections(
                loaded.sections, max_tokens=self.chunking.max_tokens, overlap_tokens=self.chunking.overlap_tokens
            )
            if not chunks:
                raise NothingToIndex("no text to index")
            if item.heading_prefix:
                chunks = [replace(c, heading_path=item.heading_prefix + c.heading_path) for c in chunks]
        except NothingToIndex as exc:
            report.skipped.append(Failure(item.uri, str(exc)))
            return None
        except DocumentError as exc:
            report.failed.append(Failure(item.uri, str(exc)))
            log.warning("ingest.failed source=%s reason=%s", item.uri, exc)
            return None
        except Exception as exc:  # a parser bug must not stop the other documents
            report.failed.append(Failure(item.uri, f"unexpected error: {type(exc).__name__}: {exc}"))
            # The reason is in the report; the traceback is for whoever debugs the parser.
            log.warning("ingest.failed source=%s", item.uri, exc_info=log.isEnabledFor(logging.DEBUG))
            return None
        if loaded.missing_includes:
            report.includes_not_found.append(Failure(item.uri, _named(loaded.missing_includes)))
        return _Prepared(item, digest, loaded.title, chunks, existing.id if existing else None)

    def _content_hash(self, item: SourceItem, data: bytes) -> str:
        digest = hashlib.sha256()
        # The embedder is not part of the hash: a collection has one embedder (checked above),
        # and `reindex` switches it without making every document look changed.
        for part in (self.chunking.fingerprint(), item.link):
            digest.update(part.encode())
            digest.update(b"\0")
        digest.update(data)
        if item.folder:  # what a page includes is part of its content
            for included in included_files(data, name=item.name, source_path=item.local_file or Path(item.uri),
                                           include_root=item.folder):
                digest.update(included.read_bytes())
        return digest.hexdigest()

    def _embedded(self, group: list[_Prepared], report: IngestReport) -> list[_Prepared]:
        """The group with its vectors; if embedding it fails, each document is tried alone, so one
        document the embedder refuses (or an outage) is reported by name and the others land."""
        try:
            self._embed(group)
            return group
        except Exception as exc:
            if len(group) == 1:
                self._embedding_failed(group[0], exc, report)
                return []
        embedded = []
        for prepared in group:
            try:
                self._embed([prepared])
                embedded.append(prepared)
            except Exception as exc:
                self._embedding_failed(prepared, exc, report)
        return embedded

    @staticmethod
    def _embedding_failed(prepared: _Prepared, exc: Exception, report: IngestReport) -> None:
        reason = str(exc) if isinstance(exc, DocRagError) else f"{type(exc).__name__}: {exc}"
        report.failed.append(Failure(prepared.item.uri, f"could not be embedded: {reason}"))
        log.warning("ingest.embed_failed source=%s reason=%s", prepared.item.uri, reason)

    def _embed(self, group: list[_Prepared]) -> None:
        if not group:
            return
        texts = [
            embedding_text(p.title, heading=display_heading(p.title, c.heading_path), text=c.text)
            for p in group
            for c in p.chunks
        ]
        vectors = self.embedder.embed_documents(texts)
        offset = 0
        for prepared in group:
            prepared.vectors = vectors[offset : offset + len(prepared.chunks)]
            offset += len(prepared.chunks)

    def _store_group(self, group: list[_Prepared], collection_id: int, *, sources: Mapping[str, int]) -> _Stored:
        stored = _Stored()
        for prepared in group:
            try:
                self._store(prepared, collection_id, sources.get(prepared.item.root))
            except (sa.exc.OperationalError, sa.exc.InterfaceError):
                raise  # the database itself is gone or timed out: the run cannot go on
            except Exception as exc:  # this document's content: report it, store the others
                reason = _first_line(getattr(exc, "orig", None) or exc)
                stored.failed.append(Failure(prepared.item.uri, f"could not be stored: {reason}"))
                log.warning("ingest.store_failed source=%s reason=%s", prepared.item.uri, reason)
                continue
            stored.chunks += len(prepared.chunks)
            if prepared.existing_id is None:
                stored.added += 1
            else:
                stored.updated += 1
        return stored

    def _store(self, prepared: _Prepared, collection_id: int, source_id: int | None = None) -> None:
        item = prepared.item
        with self.sessions.begin() as session:
            # Losing the last few ingested documents on a crash is harmless (a re-run redoes
            # them); waiting for a disk flush per document is not.
            session.execute(sa.text("SET LOCAL synchronous_commit = off"))
            values = dict(
                link=item.link,
                title=prepared.title,
                content_hash=prepared.content_hash,
                meta={**item.meta, "root": item.root, "version": self._version(item)},
            )
            if source_id is not None:
                values["source_id"] = source_id
            if prepared.existing_id is None:
                document = Document(collection_id=collection_id, source_uri=item.uri, **values)
                session.add(document)
                session.flush()
                document_id = document.id
            else:
                document_id = prepared.existing_id
                session.execute(sa.update(Document).where(Document.id == document_id).values(**values))
                session.execute(sa.delete(DocumentChunk).where(DocumentChunk.document_id == document_id))
            copy_chunks(
                session,
                (
                    ChunkRow(
                        document_id=document_id,
                        collection_id=collection_id,
                        position=chunk.position,
                        title=prepared.title,
                        heading=display_heading(prepared.title, chunk.heading_path),
                        link=chunk_link(item.link, chunk.anchor),
                        text=chunk.text,
                        token_count=chunk.token_count,
                        embedding=vector,
                    )
                    for chunk, vector in zip(prepared.chunks, prepared.vectors)
                ),
            )

    def _prune(self, collection_id: int, roots: set[str], seen: set[str]) -> int:
        with self.sessions.begin() as session:
            result = session.execute(
                sa.delete(Document).where(
                    Document.collection_id == collection_id,
                    Document.meta["root"].astext.in_(sorted(roots)),
                    Document.source_uri.not_in(sorted(seen)) if seen else sa.true(),
                )
            )
            return result.rowcount or 0

    def reindex(self, collection: str, *, progress: Callable[[int], None] | None = None) -> int:
        """Re-embed every chunk with the configured embedder, switching the collection atomically."""
        with self.sessions.begin() as session:
            coll = get_collection(session, collection)
            rows = session.execute(
                sa.select(DocumentChunk.id, DocumentChunk.title, DocumentChunk.heading, DocumentChunk.text)
                .where(DocumentChunk.collection_id == coll.id)
                .order_by(DocumentChunk.id)
            ).all()
            for start in range(0, len(rows), EMBED_GROUP_CHUNKS):
                batch = rows[start : start + EMBED_GROUP_CHUNKS]
                vectors = self.embedder.embed_documents(
                    [embedding_text(title, heading=heading, text=text) for _, title, heading, text in batch]
                )
                session.execute(
                    sa.update(DocumentChunk),
                    [{"id": row[0], "embedding": vector} for row, vector in zip(batch, vectors)],
                )
                if progress:
                    progress(len(batch))
            session.execute(
                sa.update(Collection)
                .where(Collection.id == coll.id)
                .values(embedder=self.embedder.name, dimension=self.embedder.dimension)
            )
        ensure_vector_index(self.sessions, coll.id, min_chunks=self.vector_index_min_chunks)
        return len(rows)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def embedding_text(title: str, *, heading: str, text: str) -> str:
    """What gets embedded: the chunk with its document title and heading, which carry topic words."""
    return "\n".join(part for part in (title, heading, text) if part)


def display_heading(title: str, heading_path: tuple[str, ...]) -> str:
    """The heading path without a leading H1 that only repeats the document title."""
    if heading_path and heading_path[0].strip().lower() == title.strip().lower():
        heading_path = heading_path[1:]
    return " > ".join(heading_path)


def chunk_link(link: str, anchor: str | None) -> str:
    if not anchor:
        return link
    return f"{link.split('#', 1)[0]}#{anchor}"


def _named(targets: Sequence[str], shown: int = 3) -> str:
    names = list(dict.fromkeys(targets))
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return "not found: " + ", ".join(names[:shown]) + more
