"""Postings for common lexemes: the text leg still finds exact BM25's best chunks, and never uses stale postings.

The test corpus is tiny, so a collection setting lowers the postings depth to 2: every lexeme in
more than two chunks counts as common and is searched through its postings.
"""
import pytest
import sqlalchemy as sa

from core.ingest.catalog import delete_document
from core.search import bm25, term_stats
from core.search.term_stats import refresh_stale_postings, refresh_term_stats
from core.storage.models import Collection, DocumentChunk, TermPosting
from core.tenancy.collections import get_collection
from tests.integration.test_bm25 import DOCS, QUERIES, reference_bm25

DEPTH = 2
# Each has a word in more than DEPTH chunks ("workers" is in two only).
COMMON_WORD_QUERIES = [q for q in QUERIES if q != "workers"]


def _write(folder, docs):
    folder.mkdir(exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text)


def _ingest_with_postings(container, folder, name, docs):
    """Ingest ``docs`` into collection ``name`` with a postings depth of DEPTH; its id."""
    _write(folder, docs)
    container.ingestor.ingest([str(folder)], collection=name, prune=True)
    with container.database.sessions.begin() as session:
        collection = get_collection(session, name)
        collection.settings = {**(collection.settings or {}), "postings_depth": DEPTH}
        collection_id = collection.id
    refresh_term_stats(container.database.sessions, collection_id)  # small: postings are built inline
    return collection_id


def _postings_are_current(database, collection_id) -> bool:
    with database.sessions() as session:
        collection = session.get_one(Collection, collection_id)
        return collection.postings_version == collection.term_stats_version and collection.postings_depth == DEPTH


def _posted_chunks(database, collection_id) -> set[int]:
    with database.sessions() as session:
        return set(session.scalars(sa.select(TermPosting.chunk_id).where(TermPosting.collection_id == collection_id)))


def _chunks(database, collection_id) -> set[int]:
    with database.sessions() as session:
        return set(session.scalars(sa.select(DocumentChunk.id).where(DocumentChunk.collection_id == collection_id)))


@pytest.fixture
def spied(monkeypatch):
    """Counts the text searches that went through postings."""
    calls = []
    original = bm25._rank_with_postings

    def spy(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(bm25, "_rank_with_postings", spy)
    return calls


def _text_leg(database, collection_id, query) -> list[int]:
    """The text leg's ranking: chunk ids, best first."""
    with database.sessions() as session:
        return [chunk_id for chunk_id, _ in bm25.rank(session, query, collection_id, limit=100)]


@pytest.mark.parametrize("query", COMMON_WORD_QUERIES)
def test_with_postings_the_best_chunks_are_exact_bm25s_best(container, tmp_path, spied, query):
    collection_id = _ingest_with_postings(container, tmp_path / "docs", "default", DOCS)
    assert _postings_are_current(container.database, collection_id)

    ranked = _text_leg(container.database, collection_id, query)

    expected = [chunk_id for chunk_id, _ in reference_bm25(container.database, collection_id, query)]
    assert spied, "the search did not use postings"
    assert ranked[:2] == expected[:2]
    # Fewer candidates (a depth of 2 leaves out chunks of common words), but ordered exactly by BM25.
    assert ranked == [chunk_id for chunk_id in expected if chunk_id in set(ranked)]


def test_postings_follow_changes_re_ingests_and_deletions(container, tmp_path):
    folder = tmp_path / "docs"
    collection_id = _ingest_with_postings(container, folder, "default", DOCS)
    before = _posted_chunks(container.database, collection_id)

    changed = {**DOCS, "workers.md": "# Workers\n\nWorkers run jobs from the queue; idle workers wait for jobs.\n"}
    del changed["billing.md"]
    (folder / "billing.md").unlink()
    _write(folder, changed)
    container.ingestor.ingest([str(folder)], collection="default", prune=True)

    assert _postings_are_current(container.database, collection_id)
    after = _posted_chunks(container.database, collection_id)
    assert after <= _chunks(container.database, collection_id)  # none of the replaced or removed chunks
    assert after != before

    delete_document(container.database.sessions, "default", source=str(folder / "queues.md"))
    assert _postings_are_current(container.database, collection_id)
    assert _posted_chunks(container.database, collection_id) <= _chunks(container.database, collection_id)


def test_stale_postings_are_not_used_until_the_background_job_rebuilds_them(container, tmp_path, spied, monkeypatch):
    folder = tmp_path / "docs"
    collection_id = _ingest_with_postings(container, folder, "default", DOCS)
    monkeypatch.setattr(term_stats, "INLINE_POSTINGS_LIMIT", 0)  # as if the collection were large
    _write(folder, {"queues.md": "# Queues\n\nA queue holds jobs until a worker is free. Queues never drop jobs.\n"})
    container.ingestor.ingest([str(folder)], collection="default")
    assert not _postings_are_current(container.database, collection_id)

    query = "retry jobs in the queue"
    ranked = _text_leg(container.database, collection_id, query)
    assert not spied  # the path without postings: exact BM25 over every candidate
    assert ranked == [chunk_id for chunk_id, _ in reference_bm25(container.database, collection_id, query)]

    assert refresh_stale_postings(container.database.sessions) == [collection_id]
    assert _postings_are_current(container.database, collection_id)
    assert _posted_chunks(container.database, collection_id) <= _chunks(container.database, collection_id)
    _text_leg(container.database, collection_id, query)
    assert spied


def test_postings_of_one_collection_never_bring_chunks_of_another(container, tmp_path, spied):
    first = _ingest_with_postings(container, tmp_path / "first", "first", DOCS)
    second = _ingest_with_postings(container, tmp_path / "second", "second", {
        name: text.replace("jobs", "jobs and tasks") for name, text in DOCS.items()
    })

    for collection_id in (first, second):
        assert _posted_chunks(container.database, collection_id) <= _chunks(container.database, collection_id)
        for query in QUERIES:
            assert set(_text_leg(container.database, collection_id, query)) <= _chunks(container.database, collection_id)
    assert spied
