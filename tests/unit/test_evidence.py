"""When does the top passage answer the question? The calibrated rule of core/answers/evidence.py."""
from core.answers.evidence import Evidence, answers_question, asks_what_no_passage_states
from core.answers.pipeline import weak_evidence
from core.types import Passage


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


def passage(text, heading="Support"):
    return Passage(chunk_id=1, document_id=1, title="Guide", heading=heading, source="guide.md", text=text, score=1.0)


def test_a_price_question_needs_a_passage_that_states_an_amount():
    support = [passage("Commercial support is offered by several companies; contact them for details.")]
    assert asks_what_no_passage_states("how much does commercial support cost?", support)
    assert asks_what_no_passage_states("What is the pricing of the hosted plan?", support)
    assert not asks_what_no_passage_states("how much does it cost?", [passage("The hosted plan is $29 per month.")])
    assert not asks_what_no_passage_states("what does a licence cost?", [passage("It is free and open source software.")])


def test_questions_that_ask_for_no_price_are_left_to_the_coverage_rule():
    support = [passage("Commercial support is offered by several companies.")]
    assert not asks_what_no_passage_states("how do I pay the maintainers by bank transfer?", support)
    assert not asks_what_no_passage_states("how much memory does a worker use?", support)


def test_a_price_no_passage_states_is_not_covered_however_well_the_words_match():
    covered = Evidence(terms=3, top_coverage=0.9, best_coverage=0.9, unknown_terms=0, chunks=2000)
    support = [passage("Commercial support costs are negotiated per company.")]
    assert weak_evidence(covered, 0.9, "sentence-transformers/x", query="how much does support cost?", passages=support)
    assert not weak_evidence(covered, 0.0, "hashing", query="how is support given?", passages=support)


def test_a_top_passage_holding_the_option_asked_about_answers_it_though_its_letter_is_no_word():
    # "what is -s for": PostgreSQL drops "s" (a stopword), so the question had no terms and was
    # "not covered" although retrieval put the page documenting -s first.
    no_terms = Evidence(terms=0, top_coverage=0.0, best_coverage=0.0, unknown_terms=0, chunks=3000)
    capture = [passage("Pass `-s` (a shortcut for `--capture=no`) to see print output.", heading="Capturing")]
    tar = [passage("Unpack with tar -xzf or pass --s to the old tool.", heading="Archives")]

    assert not weak_evidence(no_terms, 0.0, "hashing", query="what is -s for", passages=capture)
    assert weak_evidence(no_terms, 0.0, "hashing", query="what is -s for", passages=tar)
