"""The head of the fused ranking, re-ranked: the page that explains a feature before the change log
that mentions it in passing, and a chunk holding the question's words together before a table that
holds them scattered over unrelated rows."""
from core.search.retrieval import Retriever, _Candidate

QUERY = "how do I stop the run at the first failing test?"


def chunk(chunk_id, text, *, title="Guide", heading="", link="guide.md"):
    return _Candidate(chunk_id, chunk_id, 0, title, heading, link, text, covered=0)


def reranked(*chunks, scores=None):
    rows = {c.chunk_id: c for c in chunks}
    ranked = list(rows)
    scores = dict(scores or {c.chunk_id: 1.0 for c in chunks})
    Retriever._rerank_head(QUERY, rows, ranked, scores, head=len(ranked))
    return ranked


def test_a_change_log_entry_ranks_below_the_guide_it_ties_with():
    changelog = chunk(1, "Stop the run at the first failing test with --maxfail=1.", title="Changelog",
                      heading="Changelog > 2.4.0 (2024-03-01)", link="changelog.md#2-4-0")
    notes = chunk(2, "Stop the run at the first failing test with --maxfail=1.", title="Release notes", link="notes.md")
    guide = chunk(3, "Stop the run at the first failing test with --maxfail=1.", heading="Failures > Stopping early")
    assert reranked(changelog, notes, guide)[0] == 3


def test_words_side_by_side_rank_above_the_same_words_scattered_over_a_table():
    table = chunk(1, "| pytest-stop | stop services |\n" + "| pytest-x | a plugin for other things |\n" * 8
                  + "| pytest-first | order by first seen |\n" + "| pytest-y | another plugin |\n" * 8
                  + "| pytest-fail | failing on purpose |\n| pytest-run | run scripts |")
    sentence = chunk(2, "To stop the run after the first failing test, pass --maxfail=1. " + "Other text here. " * 20)
    assert reranked(table, sentence, scores={1: 1.0, 2: 0.9}) == [2, 1]
