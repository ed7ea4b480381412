"""Vector search: nearest chunks by cosine, through the HNSW index for the embedder's size, per collection."""
import sqlalchemy as sa

from core.collections import get_collection
from core.retrieval import Retriever

DOCS = {
    "keys.md": "# API keys\n\nRotate the signing key every ninety days and revoke leaked keys at once.\n",
    "limits.md": "# Rate limits\n\nEach person may ask ten questions per minute before being told to wait.\n",
    "deploy.md": "# Deployment\n\nRun the web process with gunicorn and the worker process for background jobs.\n",
    "webhooks.md": "# Webhooks\n\nDeliveries are signed; retries follow an exponential schedule for a day.\n",
}


def ingest(container, tmp_path, collection, docs=DOCS):
    folder = tmp_path / collection
    folder.mkdir()
    for name, text in docs.items():
        (folder / name).write_text(text)
    container.ingestor.ingest([str(folder)], collection=collection)
    with container.database.sessions() as session:
        return get_collection(session, collection).id


def vector_search(container, collection_id, query):
    retriever = Retriever(sessions=container.database.sessions, embedder=container.embedder)
    return retriever.search(query, collection_id=collection_id, limit=4, max_per_document=1, mode="vector")


def test_vector_search_ranks_the_closest_chunk_first(container, tmp_path):
    collection_id = ingest(container, tmp_path, "default")

    result = vector_search(container, collection_id, "how often should I rotate the signing key?")

    assert result.passages[0].source.split("#")[0].endswith("keys.md")
    assert 0 < result.best_similarity <= 1


def test_vector_search_never_crosses_collections(container, tmp_path):
    first = ingest(container, tmp_path, "first")
    second = ingest(container, tmp_path, "second", {"other.md": "# Other\n\nRotate the signing key monthly.\n"})

    result = vector_search(container, first, "rotate the signing key")

    with container.database.sessions() as session:
        owners = set(session.scalars(sa.text("SELECT collection_id FROM document_chunks WHERE id = ANY(:ids)"),
                                     {"ids": [p.chunk_id for p in result.passages]}))
    assert owners == {first} and second != first


def test_vector_search_can_use_the_hnsw_index_for_its_dimension(container, database, tmp_path):
    collection_id = ingest(container, tmp_path, "default")
    assert container.embedder.dimension == 1024
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sa.event.listen(database.engine, "before_cursor_execute", capture)
    try:
        vector_search(container, collection_id, "rotate the signing key")
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", capture)
    statement, parameters = next((s, p) for s, p in statements if "<=>" in s)

    with database.engine.begin() as conn:
        # A tiny table is cheapest to scan; forbid the alternatives to see whether the index matches the query.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(sa.text(f"SET LOCAL {setting} = off"))
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())

    assert "ix_document_chunks_embedding_1024" in plan
