"""Hybrid search inside PostgreSQL: pgvector cosine + BM25 full text, fused by score.

Each leg returns its best candidates for one collection with their scores: the vector leg here,
the text leg in core/search/bm25.py. They are fused by normalised score (core/search/fusion.py), then the fused
list's head is re-ranked (change logs and release notes count less; chunks holding the query's
words close together count more), diversified (a cap per document), and neighbouring chunks of one
document are merged into one passage, so the context reads as the document does.
"""
from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.search import bm25
from core.search.embeddings import Embedder
from core.search.fusion import Scored, convex_combination_fusion, reciprocal_rank_fusion, vector_weight_for
from core.ingest.chunking import heading_line
from core.storage.models import TS_CONFIG
from core.types import Passage

Mode = Literal["hybrid", "vector", "text"]
Fusion = Literal["convex", "rrf"]

# A deep candidate list from each leg lets fusion rescue a chunk that one leg ranks low
# (measured: 100 beats 50 on every metric; see bench/retrieval_eval.py).
CANDIDATES_PER_LEG = 100
# Passages are read for the first limit * max_per_document * HEAD_FACTOR fused chunks at once.
HEAD_FACTOR = 2
# The text leg runs on its own connection while the vector leg runs on the caller's: the two
# queries overlap instead of adding up. Bounded so a burst of searches cannot open unbounded
# connections; a search waiting for a worker is no slower than running its legs one after the other.
TEXT_LEG_WORKERS = 8
# A change log, release notes or a version's "what's new" mentions every feature once, in passing,
# next to the words of many questions; the page that explains the feature is the better answer.
# Such chunks keep this share of their fused score (chosen on the dev split of bench/answers;
# see docs/answer-quality.md). Detected by their title or link, or a heading naming a version.
HISTORY_PRIOR = 0.5
_HISTORY_WORDS = re.compile(
    r"(?i)(?<![a-z])(change[ _-]?logs?|changes|history|release[ _-]?notes|what'?s[ _-]?new|whatsnew|news|announce)(?![a-z])"
)
# The fused score of a chunk in the head is scaled by 1 - w + w * proximity (see proximity()).
PROXIMITY_WEIGHT = 0.3
PROXIMITY_WINDOW = 24  # words: about two sentences
_TOKEN = re.compile(r"[a-z0-9][a-z0-9_]*")
_STOPWORDS = frozenset(
    "a an the and or but if of to in on for with by at from as is are was were be been being do does did "
    "how what when where which who whom why can could should would will shall may might must i you we they "
    "it its this that these those my your our their me us them there here not no yes so than then too very "
    "about into over under up down out any all some each more most other such only own same just also get "
    "use using used want need have has had".split()
)
_VERSION_HEADING = re.compile(r"^\W*(?:v|version\s+|release\s+|[\w-]+-)?\d+\.\d+(?:\.\w+)?\b", re.IGNORECASE)


@dataclass(frozen=True)
class SearchResult:
    passages: list[Passage]
    query_terms: int  # distinct search terms in the query after stemming and stopwords
    best_coverage: float  # share of those terms found in the best-covering passage
    best_similarity: float  # highest vector cosine similarity among the candidates


@dataclass(frozen=True)
class _Candidate:
    chunk_id: int
    document_id: int
    position: int
    title: str
    heading: str
    link: str
    text: str
    covered: int  # distinct query terms the chunk holds


class Retriever:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        embedder: Embedder,
        candidates: int = CANDIDATES_PER_LEG,
        fusion: Fusion = "convex",
        vector_weight: float | None = None,
    ) -> None:
        self.sessions = sessions
        self.embedder = embedder
        self.candidates = candidates
        self.fusion = fusion
        # The vector leg's share of the hybrid score; unset, the one measured for this embedder's kind.
        self.vector_weight = vector_weight_for(embedder.name) if vector_weight is None else vector_weight
        self._text_legs = ThreadPoolExecutor(max_workers=TEXT_LEG_WORKERS, thread_name_prefix="text-leg")

    def search(
        self,
        query: str,
        *,
        collection_id: int,
        limit: int = 10,
        max_per_document: int = 2,
        mode: Mode = "hybrid",
        merge_neighbours: bool = True,
    ) -> SearchResult:
        vector, text = self.legs(query, collection_id=collection_id, mode=mode)
        similarity = vector[0][1] if vector else 0.0
        # One leg alone is normalised all the same, so passage scores run from 0 to 1 in every mode.
        fused = self.fuse(vector, text) if mode == "hybrid" else convex_combination_fusion([vector or text])
        scores = dict(fused)
        ranked = [chunk_id for chunk_id, _ in fused]
        with self.sessions() as session:
            # One round trip for the head of the fused list, which nearly always fills the
            # context; the rest only when one document holds too many of the best chunks.
            head = limit * max(max_per_document, 1) * HEAD_FACTOR
            rows, terms = self._load(session, query, ranked[:head])
            if mode == "hybrid":  # a leg alone stays as that leg ranks (bench/retrieval_eval.py compares them)
                self._rerank_head(query, rows, ranked, scores, head)
            chosen = _diversify([rows[i] for i in ranked[:head] if i in rows], max_per_document, limit)
            if len(chosen) < limit and len(ranked) > head:
                rows.update(self._load(session, query, ranked[head:])[0])
                chosen = _diversify([rows[i] for i in ranked if i in rows], max_per_document, limit)
        passages = _passages(chosen, scores, merge_neighbours)
        coverage = max((rows[p.chunk_id].covered for p in passages), default=0)
        return SearchResult(passages, terms, coverage / terms if terms else 0.0, similarity)

    @staticmethod
    def _rerank_head(query: str, rows: dict[int, _Candidate], ranked: list[int], scores: dict[int, float], head: int) -> None:
        """Scale the head's fused scores by the kind of page (document_prior) and by how close
        together the chunk holds the query's words (proximity), and re-sort the head in place."""
        nearness = proximity(query, [rows[i] for i in ranked[:head] if i in rows])
        for i in ranked[:head]:
            if i in rows:
                scores[i] *= document_prior(rows[i]) * (1 - PROXIMITY_WEIGHT + PROXIMITY_WEIGHT * nearness[i])
        ranked[:head] = sorted(ranked[:head], key=lambda i: -scores[i])

    def legs(self, query: str, *, collection_id: int, mode: Mode = "hybrid") -> tuple[Scored, Scored]:
        """The vector and the text leg's candidates, best first; a leg the mode leaves out is empty."""
        # The legs overlap: the text leg runs on a pool thread while this one runs the vector leg.
        # Neither waits for the other while holding a connection, so a burst of searches cannot
        # take every pooled connection and then wait for one more.
        text_leg = self._text_legs.submit(self._text_leg_alone, query, collection_id) if mode != "vector" else None
        vector = self._vector_leg(query, collection_id) if mode != "text" else []
        text = text_leg.result() if text_leg is not None else []
        return vector, text

    def fuse(self, vector: Scored, text: Scored) -> list[tuple[int, float]]:
        """One ranking from both legs, the vector leg counting ``vector_weight``, the text leg the rest."""
        weights = (self.vector_weight, 1.0 - self.vector_weight)
        if self.fusion == "rrf":
            return reciprocal_rank_fusion([[chunk_id for chunk_id, _ in leg] for leg in (vector, text)], weights=weights)
        return convex_combination_fusion([vector, text], weights)

    def _vector_leg(self, query: str, collection_id: int) -> Scored:
        """Nearest chunks by cosine similarity, best first, with their similarity."""
        dim = int(self.embedder.dimension)  # an int from our own embedder, safe to inline in the cast
        vector = self.embedder.embed_query(query)  # before taking a connection: it may be an API call
        if not any(vector):  # no features (e.g. only symbols): cosine is undefined
            return []
        with self.sessions() as session:
            # A wider graph search than pgvector's default 40, for this transaction. A large
            # collection has its own index (core/search/vector_index.py), a small one is scanned exactly.
            session.execute(sa.text("SET LOCAL hnsw.ef_search = 100"))
            rows = session.execute(
                sa.text(
                    f"SELECT id, embedding::halfvec({dim}) <=> CAST(:q AS halfvec({dim})) AS distance "
                    "FROM document_chunks WHERE collection_id = :c AND vector_dims(embedding) = :dim "
                    f"ORDER BY embedding::halfvec({dim}) <=> CAST(:q AS halfvec({dim})) LIMIT :n"
                ),
                {"q": _vector_literal(vector), "c": collection_id, "dim": dim, "n": self.candidates},
            ).all()
        return [(row.id, 1.0 - row.distance) for row in rows]

    def _text_leg_alone(self, query: str, collection_id: int) -> Scored:
        with self.sessions() as session:
            return self._text_leg(session, query, collection_id)

    def _text_leg(self, session: Session, query: str, collection_id: int) -> Scored:
        return bm25.rank(session, query, collection_id, limit=self.candidates)

    def _load(self, session: Session, query: str, chunk_ids: Sequence[int]) -> tuple[dict[int, _Candidate], int]:
        """The chunks with what a passage shows, and how many of the query's terms each holds; the term count."""
        rows = session.execute(
            sa.text(
                "WITH q AS (SELECT tsvector_to_array(to_tsvector(CAST(:cfg AS regconfig), :query)) AS terms) "
                "SELECT c.id, c.document_id, c.position, c.title, c.heading, c.link, c.text, cardinality(q.terms) AS n,"
                " (SELECT count(*) FROM unnest(tsvector_to_array(c.tsv)) l WHERE l = ANY(q.terms)) AS covered "
                "FROM q LEFT JOIN document_chunks c ON c.id = ANY(:ids)"
            ),
            {"cfg": TS_CONFIG, "query": query, "ids": list(chunk_ids)},
        ).all()
        chunks = {row.id: _Candidate(*row[:7], covered=row.covered) for row in rows if row.id is not None}
        return chunks, rows[0].n


def proximity(query: str, chunks: Sequence[_Candidate]) -> dict[int, float]:
    """Per chunk, the weighted share of the query's words found together in its best window of
    PROXIMITY_WINDOW words (1: all of them side by side). A chunk that holds the words scattered
    over unrelated lines (a table of plugins, a list of release notes) is less likely to answer."""
    wanted = {_stem(w) for w in _TOKEN.findall(query.lower()) if w not in _STOPWORDS}
    if not wanted or not chunks:
        return {c.chunk_id: 1.0 for c in chunks}
    tokens = {c.chunk_id: [_stem(w) for w in _TOKEN.findall(f"{c.title} {c.heading} {c.text}".lower())] for c in chunks}
    held = {cid: set(words) & wanted for cid, words in tokens.items()}
    # Words in few of these chunks say more (as IDF does over the collection).
    weight = {w: math.log(1 + (len(chunks) + 1) / (1 + sum(w in h for h in held.values()))) for w in wanted}
    total = sum(weight.values())
    return {cid: _best_window(words, wanted, weight) / total for cid, words in tokens.items()}


def _best_window(words: list[str], wanted: set[str], weight: dict[str, float]) -> float:
    best, counts, inside = 0.0, {}, 0.0
    for at, word in enumerate(words):
        if word in wanted:
            counts[word] = counts.get(word, 0) + 1
            inside += weight[word] if counts[word] == 1 else 0.0
        gone = at - PROXIMITY_WINDOW
        if gone >= 0 and words[gone] in wanted:
            counts[words[gone]] -= 1
            inside -= weight[words[gone]] if counts[words[gone]] == 0 else 0.0
        best = max(best, inside)
    return best


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def document_prior(chunk: _Candidate) -> float:
    """How much of its fused score a chunk keeps for the kind of page it is on (see HISTORY_PRIOR)."""
    headings = [part for part in chunk.heading.split(" > ") if part]
    if _HISTORY_WORDS.search(chunk.title) or _HISTORY_WORDS.search(chunk.link.split("#", 1)[0]):
        return HISTORY_PRIOR
    if any(_VERSION_HEADING.match(part) for part in [chunk.title, *headings]):
        return HISTORY_PRIOR
    return 1.0


def _diversify(candidates: list[_Candidate], max_per_document: int, limit: int) -> list[_Candidate]:
    per_document: dict[int, int] = {}
    chosen = []
    for candidate in candidates:
        if per_document.get(candidate.document_id, 0) >= max_per_document:
            continue
        per_document[candidate.document_id] = per_document.get(candidate.document_id, 0) + 1
        chosen.append(candidate)
        if len(chosen) == limit:
            break
    return chosen


def _passages(chosen: list[_Candidate], scores: dict[int, float], merge: bool) -> list[Passage]:
    """Turn chosen chunks into passages; adjacent chunks of one document become one passage."""
    groups: list[list[_Candidate]] = []
    for candidate in chosen:
        for group in groups if merge else []:
            if group[0].document_id == candidate.document_id and any(
                abs(member.position - candidate.position) == 1 for member in group
            ):
                group.append(candidate)
                break
        else:
            groups.append([candidate])
    passages = []
    for group in groups:
        ordered = sorted(group, key=lambda c: c.position)
        first = ordered[0]
        passages.append(
            Passage(
                chunk_id=group[0].chunk_id,
                document_id=first.document_id,
                title=first.title,
                heading=first.heading,
                source=first.link,
                text=_merged_text(ordered),
                score=max(scores[c.chunk_id] for c in group),
            )
        )
    return passages


def _merged_text(ordered: list[_Candidate]) -> str:
    """Neighbouring chunks as one text; a chunk that starts a new section says so with its heading
    (as chunking marks inline headings: the title is level 1), since the passage keeps only the first."""
    parts = [ordered[0].text]
    for before, chunk in zip(ordered, ordered[1:]):
        if chunk.heading and chunk.heading != before.heading:
            parts.append(heading_line(("", *chunk.heading.split(" > "))) + "\n" + chunk.text)
        else:
            parts.append(without_overlap(before.text, chunk.text))
    return "\n\n".join(p for p in parts if p)


def without_overlap(before: str, after: str) -> str:
    """``after`` without the paragraphs it repeats from the end of ``before``.

    A long section is chunked with overlap: the next chunk starts with the previous one's last
    paragraphs (core/ingest/chunking.py), so that either chunk alone keeps its context. Shown
    together, the repeated paragraphs would be quoted twice. The rows of a long table or list are
    carried over as lines, so a line break ends a repeat too, once it holds a line's worth of text
    (a bare "```" shared by both ends is no repeat)."""
    cuts = [(m.start(), m.end()) for m in re.finditer(r"\n+", after)] + [(len(after), len(after))]
    for end, rest in reversed(cuts):
        head = after[:end]
        if end < len(after) and rest - end == 1 and len(head) < 20:
            continue
        if before == head or before.endswith("\n" + head):
            return after[rest:]
    return after


def _vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.6g}" for x in vector) + "]"
