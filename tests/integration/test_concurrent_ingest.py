"""Ingests into one collection may run at the same time (CLI, API jobs, workers on other machines)."""
import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from core.storage.models import Collection, DocumentChunk, TermStat


def write_folder(root, name, files=6):
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"{name}-{i}.md").write_text(
            f"# {name} page {i}\n\nThe {name} service stores {i} shared widgets and retries uploads.\n"
        )
    return root


def test_two_ingests_into_one_collection_at_once_both_land(container, database, tmp_path):
    folders = [write_folder(tmp_path / name, name) for name in ("alpha", "beta", "gamma", "delta")]
    start = threading.Barrier(len(folders))

    def ingest(folder):
        start.wait()
        return container.ingestor.ingest([str(folder)], collection="shared")

    with ThreadPoolExecutor(len(folders)) as pool:
        reports = list(pool.map(ingest, folders))

    assert [(r.added, r.failed) for r in reports] == [(6, [])] * len(folders)
    with database.sessions() as session:
        chunks = session.scalar(sa.select(sa.func.count()).select_from(DocumentChunk))
        collection = session.scalars(sa.select(Collection).where(Collection.name == "shared")).one()
        widgets_df = session.scalar(sa.select(TermStat.df).where(TermStat.lexeme == "widget"))
    # The statistics the last refresh left describe every chunk of every ingest, not a subset.
    assert collection.chunk_count == chunks == 24
    assert widgets_df == 24
