"""Knowledge gaps: the questions the documentation did not answer, grouped into topics.

A gap question is one answered "not covered", or answered with little confidence (best vector
similarity under ``LOW_CONFIDENCE``), or given a 👎. They are embedded with the collection's
embedder and grouped; each topic lists how often it was asked, example questions (the most central
first) and the documents retrieval found closest, i.e. where to write.

Three groupings are implemented because the choice was measured, not assumed (bench/console.py,
figures in docs/console.md): ``agglomerative`` (complete linkage on cosine distance, cut at a
distance; above ``LINKAGE_SAMPLE`` questions on a random sample, the others joining the nearest
topic, so it stays linear), ``greedy`` (one pass: join the most similar topic's leader above a threshold, else
lead a new topic) and ``kmeans`` (k = sqrt(n/2)).
"""
from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from core.console.traces import NOT_COVERED
from core.search.embeddings import Embedder
from core.storage.models import Feedback, KnowledgeGaps, QuestionTrace

log = logging.getLogger(__name__)

LOW_CONFIDENCE = 0.3  # best cosine similarity under which an answer counts as a gap too
WINDOW_DAYS = 90
MAX_QUESTIONS = 100_000  # the newest ones, when a collection has more
TOPICS_KEPT = 30
EXAMPLES = 5
CLOSEST_DOCUMENTS = 3
# Measured on bench/gaps/questions.jsonl (see docs/console.md): complete linkage cut at this cosine
# distance. (Ward scored higher on that set but its merge distances grow with cluster sizes, so one
# cut means different topic sizes at 100 and at 100,000 questions; complete linkage does not.)
COMPLETE_DISTANCE = {"hashing": 0.95, "default": 0.9}
GREEDY_SIMILARITY = {"hashing": 0.1, "default": 0.35}
LINKAGE_SAMPLE = 4000
MAX_CENTRES = 300


def _for(embedder_name: str, table: dict[str, float]) -> float:
    return table["hashing"] if embedder_name.startswith("hashing") else table["default"]


# -- groupings: vectors (L2-normalised rows) -> one label per row ------------------------------------
def greedy(vectors: np.ndarray, similarity: float) -> np.ndarray:
    labels = np.empty(len(vectors), dtype=np.int64)
    leaders: list[np.ndarray] = []
    matrix = np.zeros((0, vectors.shape[1]), dtype=np.float32)
    for i, v in enumerate(vectors):
        if len(leaders):
            sims = matrix @ v
            best = int(np.argmax(sims))
            if sims[best] >= similarity:
                labels[i] = best
                continue
        leaders.append(v)
        matrix = np.vstack([matrix, v[None, :]])
        labels[i] = len(leaders) - 1
    return labels


def kmeans(vectors: np.ndarray, k: int | None = None, *, seed: int = 0, iterations: int = 10) -> np.ndarray:
    """Spherical k-means (Lloyd's iterations on unit vectors), seeded from a random sample."""
    k = min(k or max(1, round(math.sqrt(len(vectors) / 2))), len(vectors))
    rng = np.random.default_rng(seed)
    centres = vectors[rng.choice(len(vectors), size=k, replace=False)]
    labels = np.zeros(len(vectors), dtype=np.int64)
    for _ in range(iterations):
        labels = _nearest(vectors, centres)
        sums = _sums(labels, vectors, k)
        empty = ~sums.any(axis=1)
        sums[empty] = centres[empty]  # a centre nobody chose stays where it was
        centres = sums / (np.linalg.norm(sums, axis=1, keepdims=True) + 1e-12)
    return _nearest(vectors, centres)


def _sums(labels: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Row sums of ``vectors`` per label, as one sparse product (np.add.at is far slower)."""
    from scipy.sparse import csr_matrix

    members = csr_matrix((np.ones(len(labels), dtype=vectors.dtype), (labels, np.arange(len(labels)))),
                         shape=(k, len(labels)))
    return np.asarray(members @ vectors)


def _nearest_with_similarity(vectors: np.ndarray, centres: np.ndarray, batch: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    best, similarity = [], []
    for i in range(0, len(vectors), batch):
        sims = vectors[i:i + batch] @ centres.T
        index = np.argmax(sims, axis=1)
        best.append(index)
        similarity.append(sims[np.arange(len(index)), index])
    return np.concatenate(best), np.concatenate(similarity)


def _nearest(vectors: np.ndarray, centres: np.ndarray, batch: int = 8192) -> np.ndarray:
    return np.concatenate([np.argmax(vectors[i:i + batch] @ centres.T, axis=1) for i in range(0, len(vectors), batch)])


def agglomerative(vectors: np.ndarray, distance: float, *, seed: int = 0) -> np.ndarray:
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=np.int64)
    if len(vectors) <= LINKAGE_SAMPLE:
        return _complete_linkage(vectors, distance)
    # Complete linkage is quadratic: link a random sample (the same cut means the same topic
    # tightness as on the measured set), then give every question its nearest topic centre.
    # A topic too rare to appear in the sample joins its nearest neighbour: the top gaps are kept.
    sample = np.random.default_rng(seed).choice(len(vectors), size=LINKAGE_SAMPLE, replace=False)
    linked = _complete_linkage(vectors[sample], distance)
    # Only the largest sample topics get a centre (the console shows the top ones): a question near
    # none of them is left out (label -1) rather than forced into an unrelated topic.
    largest = np.argsort(-np.bincount(linked))[:MAX_CENTRES]
    sums = _sums(linked, vectors[sample], int(linked.max()) + 1)[largest]
    centres = (sums / (np.linalg.norm(sums, axis=1, keepdims=True) + 1e-12)).astype(vectors.dtype)
    nearest, similarity = _nearest_with_similarity(vectors, centres)
    return np.where(similarity >= 1.0 - distance, nearest, -1)


def _complete_linkage(vectors: np.ndarray, distance: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    # Cosine distances of unit vectors by one matrix product (BLAS), far faster than pdist.
    distances = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0).astype(np.float64)
    np.fill_diagonal(distances, 0.0)
    condensed = squareform(distances, checks=False)
    return fcluster(linkage(condensed, method="complete"), t=distance, criterion="distance") - 1


def group(vectors: np.ndarray, embedder_name: str, method: str = "agglomerative") -> np.ndarray:
    if method == "greedy":
        return greedy(vectors, _for(embedder_name, GREEDY_SIMILARITY))
    if method == "kmeans":
        return kmeans(vectors)
    return agglomerative(vectors, _for(embedder_name, COMPLETE_DISTANCE))


# -- topics ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GapQuestion:
    text: str
    documents: tuple[tuple[str, str], ...]  # (title, link) of the passages retrieval found closest


def topics(questions: Sequence[GapQuestion], vectors: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Topics, most asked first: label (the most central question), count, examples, closest documents."""
    found = []
    for label in np.unique(labels[labels >= 0]):  # -1: near no topic
        members = np.flatnonzero(labels == label)
        centroid = vectors[members].mean(axis=0)
        central = members[np.argsort(-(vectors[members] @ centroid))]
        examples = list(dict.fromkeys(questions[i].text for i in central))[:EXAMPLES]
        documents = Counter(d for i in members for d in questions[i].documents)
        found.append({
            "label": examples[0],
            "count": int(len(members)),
            "examples": examples,
            "documents": [{"title": t, "link": link, "questions": n}
                          for (t, link), n in documents.most_common(CLOSEST_DOCUMENTS)],
        })
    found.sort(key=lambda t: (-t["count"], t["label"]))
    return found


def gap_questions(session: Session, collection_id: int, *, since: datetime, limit: int = MAX_QUESTIONS) -> list[GapQuestion]:
    disliked = sa.exists().where(Feedback.message_id == QuestionTrace.answer_id, Feedback.score < 0)
    rows = session.execute(
        sa.select(QuestionTrace.question, QuestionTrace.passages)
        .where(
            QuestionTrace.collection_id == collection_id,
            QuestionTrace.asked_at >= since,
            QuestionTrace.question.is_not(None),
            sa.or_(QuestionTrace.outcome == NOT_COVERED, QuestionTrace.confidence < LOW_CONFIDENCE, disliked),
        )
        .order_by(QuestionTrace.asked_at.desc())
        .limit(limit)
    )
    return [
        GapQuestion(row.question, tuple(dict.fromkeys((p["title"], p["source"]) for p in row.passages)))
        for row in rows
    ]


def refresh_gaps(
    sessions: sessionmaker[Session], embedder: Embedder, collection_id: int, *,
    method: str = "agglomerative", now: datetime | None = None, progress: Callable[[str], None] = lambda _: None,
) -> int:
    """Group the collection's recent gap questions and store the topics; returns how many questions."""
    now = now or datetime.now(timezone.utc)
    started = time.perf_counter()
    with sessions() as session:
        questions = gap_questions(session, collection_id, since=now - timedelta(days=WINDOW_DAYS))
    progress(f"loaded {len(questions)} gap questions in {time.perf_counter() - started:.1f} s")
    found: list[dict] = []
    if questions:
        # The same question asked again is embedded once: the text, not the count, costs time.
        distinct = {text: n for n, text in enumerate(dict.fromkeys(q.text for q in questions))}
        unique = np.asarray(embedder.embed_documents(list(distinct)), dtype=np.float32)
        vectors = unique[[distinct[q.text] for q in questions]]
        progress(f"embedded {len(distinct)} distinct questions in {time.perf_counter() - started:.1f} s (cumulative)")
        labels = group(vectors, embedder.name, method)
        progress(f"grouped in {time.perf_counter() - started:.1f} s (cumulative)")
        found = topics(questions, vectors, labels)[:TOPICS_KEPT]
        progress(f"described the topics in {time.perf_counter() - started:.1f} s (cumulative)")
    with sessions.begin() as session:
        statement = insert(KnowledgeGaps).values(
            collection_id=collection_id, computed_at=now, questions=len(questions), topics=found
        )
        session.execute(statement.on_conflict_do_update(
            index_elements=["collection_id"],
            set_={"computed_at": now, "questions": len(questions), "topics": found},
        ))
    log.info("console.gaps_refreshed collection_id=%s questions=%s topics=%s", collection_id, len(questions), len(found))
    return len(questions)
