"""Per-collection term statistics: what BM25 needs and PostgreSQL's own ranking lacks.

``ts_rank`` gives a rare word no more weight than a common one; BM25 weighs each query term by
its inverse document frequency. Document frequencies are recomputed after every ingest that
changed something (a few seconds for 100,000 chunks), so queries only look them up.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.models import Collection, DocumentChunk, TermStat


def refresh_term_stats(sessions: sessionmaker[Session], collection_id: int) -> None:
    with sessions.begin() as session:
        session.execute(sa.delete(TermStat).where(TermStat.collection_id == collection_id))
        lexeme = sa.func.unnest(sa.func.tsvector_to_array(DocumentChunk.tsv)).label("lexeme")
        per_chunk = (
            sa.select(lexeme).where(DocumentChunk.collection_id == collection_id).subquery()
        )
        session.execute(
            sa.insert(TermStat).from_select(
                ["collection_id", "lexeme", "df"],
                sa.select(sa.literal(collection_id), per_chunk.c.lexeme, sa.func.count()).group_by(per_chunk.c.lexeme),
            )
        )
        count, average = session.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.avg(DocumentChunk.token_count), 0.0)).where(
                DocumentChunk.collection_id == collection_id
            )
        ).one()
        session.execute(
            sa.update(Collection)
            .where(Collection.id == collection_id)
            .values(chunk_count=count, avg_chunk_tokens=float(average))
        )
