"""Fusing the ranked lists of the search legs into one.

The default is a convex combination of min-max normalised scores (Bruch et al. 2022, "An Analysis
of Fusion Functions for Hybrid Retrieval"): unlike reciprocal rank fusion it keeps how far apart
the scores are, so a chunk one leg is sure about is not ranked as if it were merely first by a
hair. RRF stays for comparison (bench/retrieval_eval.py --fusion rrf).
"""
from __future__ import annotations

from typing import Sequence

# One leg's candidates, best first: (chunk id, the leg's own score, higher is better).
Scored = list[tuple[int, float]]

# k=60 as in the RRF paper.
RRF_K = 60


def convex_combination_fusion(legs: Sequence[Scored]) -> list[tuple[int, float]]:
    """Average of each leg's min-max normalised score; a chunk a leg did not return gets 0 there.

    Equal weights: no leg is known in advance to be the better one for an unseen collection and
    question (a learned weight would fit whatever data it was learned on).
    """
    scores: dict[int, float] = {}
    for leg in legs:
        for chunk_id, normalised in _min_max(leg).items():
            scores[chunk_id] = scores.get(chunk_id, 0.0) + normalised / len(legs)
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


def reciprocal_rank_fusion(ranked_lists: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for ranked in ranked_lists:
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
