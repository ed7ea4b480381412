"""When does the top passage answer the question? The calibrated rule of core/answers/evidence.py."""
from core.answers.evidence import Evidence, answers_question


def test_a_top_passage_holding_little_of_the_question_does_not_answer_it():
    assert not answers_question(Evidence(terms=4, top_coverage=0.1, best_coverage=0.3, unknown_terms=0, chunks=2000))
    assert answers_question(Evidence(terms=4, top_coverage=0.4, best_coverage=0.4, unknown_terms=0, chunks=2000))


def test_naming_what_a_large_collection_never_mentions_needs_a_well_covered_top_passage():
    partial = Evidence(terms=4, top_coverage=0.4, best_coverage=0.4, unknown_terms=1, chunks=2000)
    assert not answers_question(partial)
    assert answers_question(Evidence(terms=4, top_coverage=0.7, best_coverage=0.7, unknown_terms=1, chunks=2000))


def test_in_a_handful_of_pages_an_absent_everyday_word_says_nothing():
    assert answers_question(Evidence(terms=4, top_coverage=0.4, best_coverage=0.4, unknown_terms=1, chunks=3))


def test_a_question_without_search_terms_is_not_answered():
    assert not answers_question(Evidence(terms=0, top_coverage=0.0, best_coverage=0.0, unknown_terms=0, chunks=10))
