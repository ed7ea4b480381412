"""Ingestion: sources -> loaders -> chunking -> embedding -> storage (core/ingest/pipeline.py).

Only constants live here, so that what sizes the database pool can read them without loading the
ingestion stack (parsers, HTTP client).
"""

# Connections storing embedded groups while the next is prepared (see _StoreBehind). The server's
# index upkeep costs ~2.5x the CPU per chunk that loading and embedding do, so it needs more than
# one backend. Measured on 2 cores (20k bench chunks, other jobs running): 1 writer 368 chunks/s,
# 2 writers 609, 3 writers 735, at the same CPU time per chunk.
STORE_WRITERS = 3
