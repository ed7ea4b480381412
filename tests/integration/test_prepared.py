"""The text leg's statements run as server-side prepared statements (core/storage/prepared.py): same results.

One connection serves every search here, so the statements are prepared once and then reused,
past the five executions after which PostgreSQL switches to a generic plan; the server forgetting
them (DISCARD ALL, DEALLOCATE ALL) must not break a search either.
"""
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from core.search import bm25

from core.storage import prepared
from tests.integration.test_bm25 import DOCS, QUERIES
from tests.integration.test_postings import _ingest_with_postings

ROUNDS = 8  # more than the five custom plans PostgreSQL makes before trying a generic one


@pytest.fixture
def one_connection(database_url):
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _search(sessions, collection_id, query):
    with sessions() as session:
        return bm25.rank(session, query, collection_id, limit=100)


def _unprepared(sessions, collection_id, monkeypatch) -> dict[str, list[tuple[int, float]]]:
    """Each query's results with the statements sent in full, as they were before they were prepared."""
    with monkeypatch.context() as patch:
        patch.setattr(prepared, "execute", lambda session, statement, parameters: session.execute(statement, parameters).all())
        return {query: _search(sessions, collection_id, query) for query in QUERIES}


def _prepared_statements(engine) -> list[tuple[str, int]]:
    """The statements prepared on the engine's connection, and how often each ran with a generic plan."""
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT statement, generic_plans FROM pg_prepared_statements")).all()


def test_searches_reusing_prepared_statements_return_what_unprepared_ones_did(
    container, tmp_path, one_connection, monkeypatch
):
    # Postings depth 2: the queries with a common word also prepare and reuse the postings shortlist.
    collection_id = _ingest_with_postings(container, tmp_path / "docs", "default", DOCS)
    sessions = sessionmaker(one_connection)
    expected = _unprepared(sessions, collection_id, monkeypatch)
    assert _prepared_statements(one_connection) == []

    for _ in range(ROUNDS):
        for query in QUERIES:  # 1 to 4 terms: a statement per term count, interleaved
            assert _search(sessions, collection_id, query) == expected[query]  # ids and scores, exactly

    statements = _prepared_statements(one_connection)
    assert any("term_postings" in statement for statement, _ in statements)  # the shortlist's too
    assert any(generic_plans for _, generic_plans in statements)


def test_a_search_prepares_its_statements_again_when_the_server_forgot_them(
    container, tmp_path, one_connection, monkeypatch
):
    collection_id = _ingest_with_postings(container, tmp_path / "docs", "default", DOCS)
    sessions = sessionmaker(one_connection)
    before = _unprepared(sessions, collection_id, monkeypatch)
    assert {query: _search(sessions, collection_id, query) for query in QUERIES} == before
    assert _prepared_statements(one_connection)

    with one_connection.connect() as conn:  # DISCARD ALL cannot run inside a transaction
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("DISCARD ALL")
    assert _prepared_statements(one_connection) == []
    assert {query: _search(sessions, collection_id, query) for query in QUERIES} == before

    with sessions() as session:  # within the search's own transaction, which must stay usable
        session.execute(sa.text("DEALLOCATE ALL"))
        assert bm25.rank(session, QUERIES[0], collection_id, limit=100) == before[QUERIES[0]]
        assert session.scalar(sa.text("SELECT 1")) == 1

    one_connection.dispose()  # a new connection prepares its own
    assert {query: _search(sessions, collection_id, query) for query in QUERIES} == before
