"""Fusing the ranked lists of the search legs into one.

The default is a convex combination of min-max normalised scores (Bruch et al. 2022, "An Analysis
of Fusion Functions for Hybrid Retrieval"): unlike reciprocal rank fusion it keeps how far apart
the scores are, so a chunk one leg is sure about is not ranked as if it were merely first by a
hair. RRF stays for comparison (bench/retrieval_eval.py --fusion rrf).

How much the vector leg counts depends on what kind of embedder made its vectors. A hashing
embedder's vectors are a second, weaker lexical signal next to BM25: given an equal say they pulled
the fusion below BM25 alone on held-out sets. A semantic model adds what BM25 cannot see
(paraphrase) and gets the larger share. Measured on several sets, dev and test halves
apart: docs/embeddings-and-search.md, bench/retrieval_eval.py --sweep.
"""
from __future__ import annotations

from typing import Sequence

# One leg's candidates, best first: (chunk id, the leg's own score, higher is better).
Scored = list[tuple[int, float]]

# k=60 as in the RRF paper.
RRF_K = 60

# The vector leg's share of a hybrid score, by embedder kind (the prefix of the embedder's name);
# the text leg has the rest. Chosen on dev halves of every evaluation set; see the module docstring.
VECTOR_WEIGHTS = {"hashing": 0.3, "sentence-transformers": 0.6, "openai": 0.6}
# An embedder of a kind not listed is taken to be semantic.
SEMANTIC_VECTOR_WEIGHT = 0.6


def vector_weight_for(embedder_name: str) -> float:
    """The default share of the vector leg for vectors made by this embedder."""
    return next(
        (weight for kind, weight in VECTOR_WEIGHTS.items() if embedder_name.startswith(kind)), SEMANTIC_VECTOR_WEIGHT
    )


def convex_combination_fusion(legs: Sequence[Scored], weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Weighted sum of each leg's min-max normalised score; a chunk a leg did not return gets 0 there.

    ``weights`` (one per leg, summing to 1) default to equal shares; scores then run from 0 to 1.
    """
    shares = _shares(legs, weights)
    scores: dict[int, float] = {}
    for leg, share in zip(legs, shares):
        for chunk_id, normalised in _min_max(leg).items():
            scores[chunk_id] = scores.get(chunk_id, 0.0) + share * normalised
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def _min_max(leg: Scored) -> dict[int, float]:
    """Scores mapped onto [0, 1] over this leg's candidates: the best gets 1, the last 0.

    Cosine similarities and BM25 scores live on unrelated scales; this puts them on one. When all
    candidates score the same (e.g. a single full-text match) each gets 1: it is the leg's best.
    """
    if not leg:
        return {}
    high = max(score for _, score in leg)
    low = min(score for _, score in leg)
    if high - low <= 1e-12:
        return {chunk_id: 1.0 for chunk_id, _ in leg}
    return {chunk_id: (score - low) / (high - low) for chunk_id, score in leg}


def reciprocal_rank_fusion(
    ranked_lists: Sequence[Sequence[int]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Each list adds share/(k + rank) for its items; equal shares unless ``weights`` are given."""
    shares = _shares(ranked_lists, weights)
    scores: dict[int, float] = {}
    for ranked, share in zip(ranked_lists, shares):
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + share / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def _shares(legs: Sequence[object], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0 / len(legs)] * len(legs) if legs else []
    if len(weights) != len(legs):
        raise ValueError(f"{len(weights)} weights for {len(legs)} legs")
    return [float(w) for w in weights]
