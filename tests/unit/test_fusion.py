"""Fusing the vector and full-text legs: what a user sees in the order and scores of passages."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy.orm import sessionmaker

from bots.wiring import Container
from core.config import load_settings
from core.search.embeddings import HashingEmbedder
from core.errors import ConfigurationError
from core.search.fusion import (
    SEMANTIC_VECTOR_WEIGHT,
    VECTOR_WEIGHTS,
    convex_combination_fusion,
    reciprocal_rank_fusion,
    vector_weight_for,
)
from core.search.retrieval import Retriever

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


# ---------------------------------------------------------------- weighting by embedder kind

# The vector leg is sure about chunk 1, the text leg about chunk 2; each ranks the other's best second.
SURE_VECTOR = [(1, 0.9), (2, 0.6), (3, 0.1)]
SURE_TEXT = [(2, 12.0), (1, 8.0), (4, 1.0)]


def _retriever(embedder_name: str, **kwargs) -> Retriever:
    return Retriever(sessions=sessionmaker(), embedder=SimpleNamespace(name=embedder_name, dimension=8), **kwargs)


def test_weights_decide_which_leg_wins_a_disagreement():
    assert order(convex_combination_fusion([SURE_VECTOR, SURE_TEXT], (0.7, 0.3)))[0] == 1
    assert order(convex_combination_fusion([SURE_VECTOR, SURE_TEXT], (0.3, 0.7)))[0] == 2
    assert order(reciprocal_rank_fusion([order(SURE_VECTOR), order(SURE_TEXT)], weights=(0.7, 0.3)))[0] == 1
    assert order(reciprocal_rank_fusion([order(SURE_VECTOR), order(SURE_TEXT)], weights=(0.3, 0.7)))[0] == 2


def test_hashing_vectors_count_less_than_a_semantic_model():
    # Hashed words are a second lexical signal next to BM25; a semantic model sees paraphrases BM25 cannot.
    hashing = vector_weight_for(HashingEmbedder().name)
    assert hashing == VECTOR_WEIGHTS["hashing"] < vector_weight_for("sentence-transformers:all-MiniLM-L6-v2")
    assert vector_weight_for("openai:text-embedding-3-small") == VECTOR_WEIGHTS["openai"]
    assert vector_weight_for("some-new-kind:model") == SEMANTIC_VECTOR_WEIGHT


def test_the_retriever_fuses_with_its_embedder_kind_weight():
    for name in (HashingEmbedder().name, "sentence-transformers:all-MiniLM-L6-v2"):
        weight = vector_weight_for(name)
        expected = convex_combination_fusion([SURE_VECTOR, SURE_TEXT], (weight, 1 - weight))
        assert _retriever(name).fuse(SURE_VECTOR, SURE_TEXT) == expected


def test_a_configured_vector_weight_overrides_the_embedder_kind(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DOCRAG_VECTOR_WEIGHT", "1")
    settings = load_settings()
    assert settings.vector_weight == 1.0
    container = Container(settings=settings, database=SimpleNamespace(sessions=sessionmaker()))
    container.__dict__["embedder"] = HashingEmbedder()  # what the cached property would build
    fused = container.engine.pipeline.retriever.fuse(SURE_VECTOR, SURE_TEXT)
    assert order(fused) == order(SURE_VECTOR) + [4]  # the text leg no longer counts, except to add its own

    assert order(_retriever(HashingEmbedder().name, vector_weight=0.0).fuse(SURE_VECTOR, SURE_TEXT))[0] == 2
    monkeypatch.setenv("DOCRAG_VECTOR_WEIGHT", "1.5")
    with pytest.raises(ConfigurationError, match="DOCRAG_VECTOR_WEIGHT"):
        load_settings()
