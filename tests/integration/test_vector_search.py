"""Vector search: nearest chunks by cosine, per collection; exact for small collections, through its own HNSW index for large ones."""
import sqlalchemy as sa

from core.tenancy.collections import get_collection
from core.search.embeddings import HashingEmbedder
from core.ingest.pipeline import ChunkingOptions, Ingestor
from core.search.retrieval import Retriever
from core.search.vector_index import index_name

DOCS = {
    "keys.md": "# API keys\n\nRotate the signing key every ninety days and revoke leaked keys at once.\n",
    "limits.md": "# Rate limits\n\nEach person may ask ten questions per minute before being told to wait.\n",
    "deploy.md": "# Deployment\n\nRun the web process with gunicorn and the worker process for background jobs.\n",
    "webhooks.md": "# Webhooks\n\nDeliveries are signed; retries follow an exponential schedule for a day.\n",
}


def ingest(container, tmp_path, collection, docs=DOCS, *, ingestor=None):
    folder = tmp_path / collection
    folder.mkdir(exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text)
    (ingestor or container.ingestor).ingest([str(folder)], collection=collection)
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


def vector_indexes(database):
    with database.engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'document_chunks' AND indexdef LIKE '%hnsw%'"
        )).all())


def vector_leg_plan(database, run_search):
    """The plan of the vector leg's own SQL, with the cheaper alternatives for a tiny table forbidden."""
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sa.event.listen(database.engine, "before_cursor_execute", capture)
    try:
        run_search()
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", capture)
    statement, parameters = next((s, p) for s, p in statements if "<=>" in s)
    with database.engine.begin() as conn:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            conn.execute(sa.text(f"SET LOCAL {setting} = off"))
        return "\n".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())


def exact_order(database, collection_id, embedder, query):
    literal = "[" + ",".join(repr(x) for x in embedder.embed_query(query)) + "]"
    with database.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT id FROM document_chunks WHERE collection_id = :c "
            "ORDER BY embedding <=> CAST(:q AS vector), id"
        ), {"c": collection_id, "q": literal}).scalars().all()


def index_from(container, minimum):
    return Ingestor(sessions=container.database.sessions, embedder=container.embedder,
                    chunking=ChunkingOptions(), vector_index_min_chunks=minimum)


def test_a_small_collection_has_no_vector_index_and_is_searched_exactly(container, database, tmp_path):
    collection_id = ingest(container, tmp_path, "default")  # 4 chunks, far below VECTOR_INDEX_MIN_CHUNKS

    result = vector_search(container, collection_id, "rotate the signing key")

    assert vector_indexes(database) == {}
    exact = exact_order(database, collection_id, container.embedder, "rotate the signing key")
    assert [p.chunk_id for p in result.passages] == exact[:4]


def test_an_ingest_that_makes_a_collection_large_builds_its_own_index_and_search_uses_it(container, database, tmp_path):
    small = ingest(container, tmp_path, "small")
    big = ingest(container, tmp_path, "big", ingestor=index_from(container, minimum=3))

    indexes = vector_indexes(database)
    assert list(indexes) == [index_name(big, 1024)]  # the small collection has none
    assert f"collection_id = {big}" in indexes[index_name(big, 1024)] and "halfvec(1024)" in indexes[index_name(big, 1024)]
    plan = vector_leg_plan(database, lambda: vector_search(container, big, "rotate the signing key"))
    assert index_name(big, 1024) in plan
    assert index_name(big, 1024) not in vector_leg_plan(database, lambda: vector_search(container, small, "keys"))
    result = vector_search(container, big, "rotate the signing key")
    assert [p.chunk_id for p in result.passages] == exact_order(database, big, container.embedder, "rotate the signing key")[:4]


def test_re_embedding_to_another_size_swaps_the_collections_index(container, database, tmp_path):
    collection_id = ingest(container, tmp_path, "default", ingestor=index_from(container, minimum=3))

    smaller = HashingEmbedder(dimension=384)
    Ingestor(sessions=database.sessions, embedder=smaller, chunking=ChunkingOptions(),
             vector_index_min_chunks=3).reindex("default")

    assert list(vector_indexes(database)) == [index_name(collection_id, 384)]
    retriever = Retriever(sessions=database.sessions, embedder=smaller)
    result = retriever.search("rotate the signing key", collection_id=collection_id, limit=1, mode="vector")
    assert result.passages[0].source.split("#")[0].endswith("keys.md")


def test_an_index_left_invalid_by_a_failed_build_is_rebuilt(container, database, tmp_path):
    ingestor = index_from(container, minimum=3)
    collection_id = ingest(container, tmp_path, "default", ingestor=ingestor)
    name = index_name(collection_id, 1024)
    with database.engine.begin() as conn:  # what a build killed half-way leaves behind
        conn.execute(sa.text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = CAST(:n AS regclass)"), {"n": name})

    changed = {"keys.md": DOCS["keys.md"] + "\nKeys of retired services are deleted.\n"}
    ingest(container, tmp_path, "default", changed, ingestor=ingestor)

    with database.engine.connect() as conn:
        valid = conn.execute(sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = CAST(:n AS regclass)"), {"n": name}).scalar()
    assert valid is True
