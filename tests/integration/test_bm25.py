"""The full-text leg ranks chunks by BM25: rare words, repeated words and title words weigh more."""
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import sessionmaker

from core.search import bm25
from core.search.bm25 import BM25_B, BM25_K1, MAX_POSITIONS, RANK_THRESHOLDS, _term_frequency
from core.tenancy.collections import get_collection
from core.search.embeddings import build_embedder
from core.storage.models import TS_CONFIG
from core.search.retrieval import Retriever

DOCS = {
    "queues.md": "# Queues\n\nA queue holds jobs. Workers take jobs from the queue in order.\n",
    "retries.md": "# Retries\n\nFailed jobs are retried. A retry waits longer each time; the queue keeps retried jobs.\n",
    "workers.md": "# Workers\n\nWorkers run jobs. Start more workers when jobs wait in the queue for long.\n",
    "backoff.md": "# Backoff\n\nRetry, retry, retry: exponential backoff spaces each retry of a job.\n",
    "billing.md": "# Billing\n\nInvoices list every job run this month, including retried jobs.\n",
    "limits.md": "# Limits\n\nEach workspace may queue ten thousand jobs; further jobs are refused.\n",
}
QUERIES = ["retry jobs in the queue", "workers", "how are invoices for retried jobs computed", "queue limits per workspace"]


@pytest.fixture
def collection(container, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    container.ingestor.ingest([str(folder)], collection="default")
    with container.database.sessions() as session:
        return get_collection(session, "default").id


def reference_bm25(database, collection_id: int, query: str) -> list[tuple[int, float]]:
    """BM25 computed here from every chunk's positions and weights, independently of the retriever's SQL."""
    with database.sessions() as session:
        terms = session.scalar(
            sa.text("SELECT tsvector_to_array(to_tsvector(CAST(:cfg AS regconfig), :q))"), {"cfg": TS_CONFIG, "q": query}
        )
        chunks = session.execute(
            sa.text("SELECT id, token_count FROM document_chunks WHERE collection_id = :c"), {"c": collection_id}
        ).all()
        postings = session.execute(
            sa.text(
                "SELECT c.id, u.lexeme, u.weights FROM document_chunks c, unnest(c.tsv) u "
                "WHERE c.collection_id = :c AND u.lexeme = ANY(:terms)"
            ),
            {"c": collection_id, "terms": terms},
        ).all()
    average = sum(tokens for _, tokens in chunks) / len(chunks)
    df = {t: sum(1 for _, lexeme, _ in postings if lexeme == t) for t in terms}
    scores: dict[int, float] = {}
    lengths = dict(chunks)
    for chunk_id, lexeme, weights in postings:
        tf = len(weights) + 2 * weights.count("A")  # title and heading words count three times
        idf = math.log(1 + (len(chunks) - df[lexeme] + 0.5) / (df[lexeme] + 0.5))
        norm = tf + BM25_K1 * (1 - BM25_B + BM25_B * lengths[chunk_id] / average)
        scores[chunk_id] = scores.get(chunk_id, 0.0) + idf * tf * (BM25_K1 + 1) / norm
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


@pytest.mark.parametrize("query", QUERIES)
def test_text_search_ranks_chunks_exactly_as_bm25(database, collection, query):
    with database.sessions() as session:
        ranked = bm25.rank(session, query, collection, limit=100)

    expected = reference_bm25(database, collection, query)
    assert [chunk_id for chunk_id, _ in ranked] == [chunk_id for chunk_id, _ in expected]
    assert [score for _, score in ranked] == pytest.approx([score for _, score in expected])


def test_a_word_repeated_or_in_the_title_outranks_a_single_mention(database, collection):
    retriever = Retriever(sessions=database.sessions, embedder=build_embedder("hashing"))

    result = retriever.search("retry", collection_id=collection, limit=4, mode="text")

    names = [p.source.rsplit("/", 1)[-1].split("#")[0] for p in result.passages]
    assert set(names[:2]) == {"backoff.md", "retries.md"}  # said four times; in the title
    assert "billing.md" in names[2:]  # said once, in passing


def test_term_frequencies_are_read_exactly_up_to_the_most_positions_a_tsvector_keeps(database):
    """The retriever reads term frequencies back from ts_rank; every count a tsvector can hold must decode exactly."""
    thresholds = sa.cast(sa.literal(RANK_THRESHOLDS), sa.ARRAY(sa.Float(53)))
    vector = sa.bindparam("tsv", type_=sa.Text)
    expression = _term_frequency(sa.cast(vector, TSVECTOR), sa.literal("'word'"), thresholds)
    with database.sessions() as session:
        for count in range(1, MAX_POSITIONS + 1):
            for titled in range(0, count + 1, max(1, count // 3)):
                positions = [f"{p}A" for p in range(1, titled + 1)] + [str(p) for p in range(titled + 1, count + 1)]
                tsv = "word:" + ",".join(positions) + " other:999"
                assert session.scalar(sa.select(expression), {"tsv": tsv}) == count + 2 * titled, (count, titled)


def test_concurrent_searches_share_a_small_pool_without_waiting_on_each_other(database, database_url, collection):
    # Each hybrid search uses two connections, one after the other and one per leg at once; a
    # search that held one while waiting for a second would starve when the pool is this small.
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=30)
    try:
        retriever = Retriever(sessions=sessionmaker(engine), embedder=build_embedder("hashing"))
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda q: retriever.search(q, collection_id=collection), QUERIES * 3))
    finally:
        engine.dispose()
    assert all(result.passages for result in results)
