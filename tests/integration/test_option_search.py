"""A question naming a command-line option finds the page that documents it, not every page with that letter.

PostgreSQL's parser makes "-x" the lexeme x and drops "-s" (a stopword): without matching options
as written (core/search/options.py), the pages below where x is a variable outrank the flag's page,
and "what is -s for" finds nothing at all.
"""
import pytest
import sqlalchemy as sa

from core.search import bm25, options
from core.search.embeddings import build_embedder
from core.search.retrieval import Retriever
from core.tenancy.collections import get_collection
from tests.builders import write_docs

DOCS = {
    "flags.md": "# Command-line flags\n\n## Stopping early\n\n`-x`, `--exitfirst`\n\nExit instantly on first error or failed test.\n",
    "capture.md": "# Capturing output\n\nPass `-s` (a shortcut for `--capture=no`) to see print output while tests run.\n",
    "plotting.md": "# Plotting\n\nPlot x against y. Set x to 0, then x = x + 1 until x reaches the width: x, x, x.\n",
    "vectors.md": "# Vectors\n\nA vector has an x and a y. Its x is the first coordinate; x * x + y * y is its length squared.\n",
    "archives.md": "# Archives\n\nUnpack with tar -xzf archive.tar.gz, or pass --x to the old tool; the x-axis tool is gone.\n",
    "shells.md": "# Shells\n\nThe shell's s command and the s key: s for save, s for search, as an editor's s does.\n",
}


@pytest.fixture
def collection(container, tmp_path):
    container.ingestor.ingest([str(write_docs(tmp_path / "docs", DOCS))], collection="default")
    with container.database.sessions() as session:
        return get_collection(session, "default").id


_SOURCE = sa.text("SELECT d.source_uri FROM document_chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = :id")


def page(passage) -> str:
    return passage.source.split("#", 1)[0].rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    "question, expected",
    [("what does -x do", "flags.md"), ("what is -s for", "capture.md"), ("--exitfirst", "flags.md")],
)
def test_the_page_documenting_the_option_comes_first(database, collection, question, expected):
    retriever = Retriever(sessions=database.sessions, embedder=build_embedder("hashing"))

    hybrid = retriever.search(question, collection_id=collection, limit=3)
    text = retriever.search(question, collection_id=collection, limit=3, mode="text")

    assert page(hybrid.passages[0]) == expected
    assert page(text.passages[0]) == expected


def test_an_option_is_matched_with_boundaries_that_respect_dashes(database, collection):
    """-x is not in --x, -xzf or x-axis: only the flags page holds it."""
    with database.sessions() as session:
        found = options.find(session, ["-x"], collection, chunk_count=10)
        holding = {session.scalar(_SOURCE, {"id": chunk_id}) for m in found for chunk_id in m.counts}

    assert [m.option for m in found] == ["-x"]
    assert {name.rsplit("/", 1)[-1] for name in holding} == {"flags.md"}


def test_an_option_no_chunk_holds_counts_by_its_words_as_before(database, collection):
    with database.sessions() as session:
        ranked = bm25.rank(session, "-y", collection, limit=10)
        by_word = bm25.rank(session, "y", collection, limit=10)

    assert ranked == by_word and ranked  # the vectors page has y as a word, no page has -y
