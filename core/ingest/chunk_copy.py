"""Writing chunk rows with ``COPY ... FROM STDIN (FORMAT binary)`` instead of INSERT statements.

Why: a 1,024-dimension vector as INSERT text is ~1,024 formatted floats, which cost more Python
time than embedding the chunk, and the server then parses them back. In PostgreSQL's binary copy
format a vector is its 4,096 bytes as they are (pgvector's ``vector_recv``), and text needs no
escaping. Runs on the caller's connection, so it belongs to the caller's transaction.
"""
from __future__ import annotations

import io
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, no header extension
_TRAILER = struct.pack(">h", -1)
_INT4 = struct.Struct(">ii")  # field length (4) and the value
_LENGTH = struct.Struct(">i")
_VECTOR_HEAD = struct.Struct(">iHH")  # field length, dimensions, pgvector's unused flags
_FIELDS = struct.pack(">h", 9)  # the columns below, in this order

COPY_CHUNKS_SQL = (
    "COPY document_chunks (document_id, collection_id, position, title, heading, link, text, token_count, embedding) "
    "FROM STDIN WITH (FORMAT binary)"
)


@dataclass(frozen=True)
class ChunkRow:
    document_id: int
    collection_id: int
    position: int
    title: str
    heading: str
    link: str
    text: str
    token_count: int
    embedding: Sequence[float]


def copy_chunks(session: Session, rows: Iterable[ChunkRow]) -> None:
    """Insert ``rows`` into document_chunks inside the session's current transaction."""
    payload = encode_rows(rows)
    cursor = session.connection().connection.cursor()  # the psycopg2 cursor of this transaction
    try:
        cursor.copy_expert(COPY_CHUNKS_SQL, io.BytesIO(payload))
    finally:
        cursor.close()


def encode_rows(rows: Iterable[ChunkRow]) -> bytes:
    parts = [_HEADER]
    for row in rows:
        parts += (
            _FIELDS,
            _INT4.pack(4, row.document_id),
            _INT4.pack(4, row.collection_id),
            _INT4.pack(4, row.position),
            _text(row.title),
            _text(row.heading),
            _text(row.link),
            _text(row.text),
            _INT4.pack(4, row.token_count),
            _vector(row.embedding),
        )
    parts.append(_TRAILER)
    return b"".join(parts)


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return _LENGTH.pack(len(data)) + data


def _vector(values: Sequence[float]) -> bytes:
    floats = array("f", values)  # float4, as pgvector stores it
    if sys.byteorder == "little":
        floats.byteswap()  # the copy format is big-endian
    return _VECTOR_HEAD.pack(4 + 4 * len(floats), len(floats), 0) + floats.tobytes()
