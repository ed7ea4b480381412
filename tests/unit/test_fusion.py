"""Fusing the vector and full-text legs: what a user sees in the order and scores of passages."""
from __future__ import annotations

from core.fusion import convex_combination_fusion, reciprocal_rank_fusion

# Cosine similarities and BM25 scores, as the two legs return them (best first).
VECTOR = [(1, 0.91), (2, 0.52), (3, 0.50), (4, 0.31)]
TEXT = [(2, 14.0), (3, 6.0), (5, 2.0)]


def order(fused: list[tuple[int, float]]) -> list[int]:
    return [chunk_id for chunk_id, _ in fused]


def test_a_leg_clear_winner_outranks_chunks_both_legs_find_mediocre():
    # Chunk 1 is far ahead in the vector leg and missing from the text leg; chunk 3 trails in both.
    # Rank fusion only sees positions and puts 3 ahead of 1 for being in both lists.
    assert order(convex_combination_fusion([VECTOR, TEXT]))[:3] == [2, 1, 3]
    assert order(reciprocal_rank_fusion([order(VECTOR), order(TEXT)]))[:3] == [2, 3, 1]


def test_each_leg_counts_the_same_whatever_the_scale_of_its_scores():
    rescaled = [(chunk_id, score * 100 + 7) for chunk_id, score in TEXT]
    assert order(convex_combination_fusion([VECTOR, rescaled])) == order(convex_combination_fusion([VECTOR, TEXT]))


def test_scores_run_from_zero_to_one_and_agreement_scores_one():
    fused = dict(convex_combination_fusion([[(7, 0.8), (8, 0.2)], [(7, 3.0), (9, 1.0)]]))
    assert fused[7] == 1.0  # best in both legs
    assert all(0.0 <= score <= 1.0 for score in fused.values())


def test_a_single_full_text_match_counts_as_that_leg_best():
    # An identifier such as an error code matches one chunk only; that match must not be wasted.
    # The vector leg ranks that chunk (3) third, behind a chunk it likes much more.
    fused = convex_combination_fusion([VECTOR, [(3, 3.2)]])
    assert order(fused)[0] == 3


def test_one_leg_alone_keeps_its_order():
    assert order(convex_combination_fusion([VECTOR])) == order(VECTOR)
    assert convex_combination_fusion([[]]) == []
