"""Questions a collection asks of itself, with no labelled questions: for a choice of fusion weight.

Each sampled chunk gives two pseudo-queries whose relevant document is the chunk's own:

* ``heading``: the chunk's title and heading path (what a reader looking for that section types);
* ``sentence``: one sentence of the chunk's body, scored with that chunk left out of both legs (so
  the exact-copy match, which only flatters the text leg, cannot decide), and only for documents
  that have other chunks to find.
"""
from __future__ import annotations

import random
import re

import sqlalchemy as sa

from core.storage.models import DocumentChunk

SENTENCE = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]+")


def sample_chunks(database, collection_id: int, count: int, seed: int = 7) -> list[dict]:
    with database.sessions() as session:
        rows = session.execute(
            sa.select(DocumentChunk.id, DocumentChunk.document_id, DocumentChunk.title, DocumentChunk.heading, DocumentChunk.text)
            .where(DocumentChunk.collection_id == collection_id).order_by(DocumentChunk.id)
        ).all()
    chunks_per_document: dict[int, int] = {}
    for row in rows:
        chunks_per_document[row.document_id] = chunks_per_document.get(row.document_id, 0) + 1
    picked = random.Random(seed).sample(rows, min(count, len(rows)))
    return [{"chunk": r.id, "title": r.title, "heading": r.heading, "text": r.text,
             "siblings": chunks_per_document[r.document_id] - 1} for r in picked]


def heading_query(chunk: dict) -> str:
    parts = [chunk["title"]] + [h for h in (chunk["heading"] or "").split(" > ") if h and h != chunk["title"]]
    return " ".join(p for p in parts if p).strip()


def sentence_query(chunk: dict, seed: int) -> str:
    """A sentence of 6 to 30 words from the chunk's body, not its heading line; '' if none."""
    lines = [line for line in chunk["text"].splitlines() if line.strip() and not line.lstrip().startswith("#")]
    sentences = [s for s in SENTENCE.split(" ".join(lines)) if 6 <= len(WORD.findall(s)) <= 30]
    return random.Random(seed).choice(sentences) if sentences else ""


def pseudo_queries(chunks: list[dict]) -> dict[str, dict]:
    """id -> {"kind", "text", "chunk"}: the query and the chunk it came from."""
    out = {}
    for i, chunk in enumerate(chunks):
        heading = heading_query(chunk)
        if heading:
            out[f"h{i}"] = {"kind": "heading", "text": heading, "chunk": chunk["chunk"]}
        sentence = sentence_query(chunk, seed=i) if chunk["siblings"] else ""
        if sentence:
            out[f"s{i}"] = {"kind": "sentence", "text": sentence, "chunk": chunk["chunk"]}
    return out
