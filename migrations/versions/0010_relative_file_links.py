"""Links of ingested files: relative to the ingested folder instead of file:// URIs of the server.

Folders ingested without --base-url used to link every document to ``file:///srv/.../guide.md``:
a link no browser opens from a web page, which also showed the server's directory layout in
every answer. Ingestion now stores ``guide.md`` (the path relative to the ingested folder, as
with --base-url), which the web playground serves. This rewrites what earlier ingests stored, so
existing collections need no re-ingest to stop showing server paths: each document's link and
its chunks' links (anchors kept), and the sources of stored answers (conversation history, which
the playground and the API show again). The document's folder is the ``root`` kept in its
metadata; a source no document explains (deleted since) keeps its file name only.

The next ingest of such a folder re-stores its documents once (the link is part of the content
hash), which is harmless. Downgrading keeps the relative links: the old ones are not recoverable
without the files, and the older code handles relative links as it handles any other.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
import json
import posixpath
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def relative_link(file_uri: str, root: str | None) -> str:
    """``file:///srv/docs/guide/a.md`` under root ``/srv/docs`` -> ``guide/a.md`` (percent-encoded)."""
    path = unquote(urlsplit(file_uri).path)
    root = (root or "").rstrip("/")
    if root and path.startswith(root + "/"):
        rel = path[len(root) + 1 :]
    else:  # a single-file ingest (root is the file itself), or an unknown root
        rel = posixpath.basename(path) or "document"
    return quote(rel, safe="/")


def upgrade() -> None:
    conn = op.get_bind()
    renamed: dict[str, str] = {}
    documents = conn.execute(
        sa.text("SELECT id, link, metadata ->> 'root' FROM documents WHERE link LIKE 'file://%'")
    ).all()
    for document_id, link, root in documents:
        new = relative_link(link, root)
        renamed[link] = new
        conn.execute(sa.text("UPDATE documents SET link = :link WHERE id = :id"), {"link": new, "id": document_id})
        conn.execute(
            sa.text(
                "UPDATE document_chunks SET link = :link || substr(link, length(:old) + 1) "
                "WHERE document_id = :id AND link LIKE 'file://%'"
            ),
            {"link": new, "old": link, "id": document_id},
        )
    messages = conn.execute(
        sa.text("SELECT id, citations FROM messages WHERE CAST(citations AS text) LIKE '%file://%'")
    ).all()
    for message_id, citations in messages:
        conn.execute(
            sa.text("UPDATE messages SET citations = CAST(:citations AS jsonb) WHERE id = :id"),
            {"citations": _json([_renamed_citation(c, renamed) for c in citations]), "id": message_id},
        )


def _renamed_citation(citation: object, renamed: dict[str, str]) -> object:
    if not isinstance(citation, dict) or not str(citation.get("source", "")).startswith("file://"):
        return citation
    source = str(citation["source"])
    base, hash_, anchor = source.partition("#")
    new = renamed.get(base) or relative_link(base, None)
    return {**citation, "source": new + hash_ + anchor}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def downgrade() -> None:
    pass
