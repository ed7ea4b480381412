"""The answer-quality bench's ruler: fact matching, abstention scoring, reference coverage, set checks."""
import json

from bench.answer_eval import (
    Question,
    check_facts,
    fact_found,
    load_set,
    reference_coverage,
    replay_question,
    score,
    summarise,
)


def question(answerable=True, facts=("--lf", "--last-failed"), qid="t-001", source="cache.rst"):
    return Question(qid, "rerun only what failed?", answerable, tuple(facts), source if answerable else None, "dev")


def test_a_fact_matches_through_markdown_marks_case_and_line_breaks():
    assert fact_found("Run `pytest --LF`\nto rerun.", ["--lf"])
    assert fact_found("Use **tmp_path**, a fixture.", ["`tmp_path`"])
    assert fact_found("set *xfail_strict*\n  = true", ["xfail_strict = TRUE"])
    assert fact_found("pass `is_flag=True` to the option", ["is_flag=True"])


def test_underscores_inside_a_name_are_part_of_the_name():
    assert not fact_found("the tmppath folder", ["tmp_path"])
    assert fact_found("_emphasised tmp_path_", ["tmp_path"])


def test_any_one_alternative_fact_settles_the_question():
    assert fact_found("use --last-failed", ["--lf", "--last-failed"])
    assert not fact_found("use --stepwise", ["--lf", "--last-failed"])
    assert not fact_found("anything", [""])


def test_an_abstention_never_counts_as_a_found_fact():
    outcome = score(question(), "I couldn't find this. Closest: --lf", abstained=True, sources=[])
    assert not outcome.found and not outcome.correct


def test_unanswerable_questions_are_right_only_when_the_engine_abstains():
    unanswerable = question(answerable=False, facts=())
    assert score(unanswerable, "not covered", abstained=True, sources=[]).correct
    assert not score(unanswerable, "confident nonsense", abstained=False, sources=[]).correct


def test_summary_reports_both_error_rates():
    outcomes = [
        score(question(qid="a1"), "use --lf", False, []),  # found
        score(question(qid="a2"), "use --stepwise", False, []),  # answered, fact missing
        score(question(qid="a3"), "not covered", True, []),  # abstained when answerable
        score(question(qid="a4"), "use --lf", False, []),  # found
        score(question(False, (), "u1"), "not covered", True, []),  # right abstention
        score(question(False, (), "u2"), "an answer", False, []),  # answered when it should abstain
    ]
    summary = summarise(outcomes)
    rates = summary.rates()
    assert (summary.answerable, summary.unanswerable, summary.found) == (4, 2, 2)
    assert rates["fact_found"] == 0.5
    assert rates["answered_when_answerable"] == 0.75
    assert rates["abstained_when_answerable"] == 0.25
    assert rates["abstained_when_unanswerable"] == 0.5
    assert rates["answered_when_should_abstain"] == 0.5


def test_rates_are_absent_rather_than_zero_without_questions_of_that_kind():
    rates = summarise([score(question(), "use --lf", False, [])]).rates()
    assert rates["abstained_when_unanswerable"] is None and rates["answered_when_should_abstain"] is None


def test_reference_coverage_counts_content_words_and_half_covered_sentences():
    reference = "Click the Add Test Case button. Then repeat for every scenario."
    recall, sentences = reference_coverage(reference, "To add cases, click the **Add Test Case** button.")
    assert sentences == 0.5  # the first sentence is covered, the second is not
    assert 0.4 < recall < 0.7  # click, add, test, case, button of: click add test case button repeat every scenario
    assert reference_coverage(reference, "") == (0.0, 0.0)
    assert reference_coverage(reference, reference) == (1.0, 1.0)


def test_check_facts_finds_facts_missing_from_their_source(tmp_path):
    (tmp_path / "cache.rst").write_text("Use ``--lf``, also spelled\n``--last-failed``.", encoding="utf-8")
    assert check_facts("t", [question()], tmp_path) == []
    problems = check_facts("t", [question(facts=("--stepwise",)), question(qid="t-002", source="gone.rst")], tmp_path)
    assert problems == ["t/t-001: fact '--stepwise' is not in cache.rst", f"t/t-002: source gone.rst does not exist in {tmp_path}"]


def test_check_facts_rejects_duplicate_ids_and_facts_on_unanswerable_rows(tmp_path):
    (tmp_path / "cache.rst").write_text("--lf", encoding="utf-8")
    rows = [question(facts=("--lf",)), question(facts=("--lf",)), Question("t-003", "price?", False, ("x",), None, "test")]
    problems = check_facts("t", rows, tmp_path)
    assert problems == ["t/t-001: duplicate id", "t/t-003: unanswerable rows have no facts and no source"]


def test_sets_load_from_json_lines(tmp_path):
    row = {"id": "p-1", "question": "q?", "answerable": False, "facts": [], "source": None, "split": "test"}
    (tmp_path / "p.jsonl").write_text(json.dumps(row) + "\n\n", encoding="utf-8")
    assert load_set(tmp_path / "p.jsonl") == [Question("p-1", "q?", False, (), None, "test")]


def test_new_term_recall_ignores_what_the_question_already_says():
    from bench.answer_eval import new_term_recall

    reference = "Use Voyage AI for domain embeddings."
    question = "Which provider for domain embeddings?"
    assert new_term_recall(reference, question, "domain embeddings are good") == 0.0
    assert new_term_recall(reference, question, "Voyage AI, use it") == 1.0
    assert new_term_recall("domain embeddings", question, "anything") is None


def recorded_row(text, *, terms=("cache", "clear"), held=(("cache", "clear"),), frequencies=None):
    passage = {"chunk_id": 1, "document_id": 1, "title": "Cache", "heading": "Clearing", "source": "cache.md",
               "text": text, "score": 1.0}
    return {"id": "t-001", "query": "how do I clear the cache?", "passages": [passage], "best_similarity": 0.0,
            "embedder": "hashing", "answer": "", "grounded": True,
            "statistics": {"terms": list(terms), "frequencies": frequencies or {t: 5 for t in terms},
                           "held": [list(h) for h in held], "chunks": 500}}


def test_a_replay_re_decides_a_recorded_question_with_the_current_answer_code():
    from core.answers.extractive import extractive_answer
    from core.types import Passage

    row = recorded_row("To clear the cache, pass --cache-clear to every run.")
    expected, _ = extractive_answer(row["query"], [Passage(**row["passages"][0])])
    outcome, same = replay_question(question(facts=("--cache-clear",)), row)
    assert outcome.found and not outcome.abstained and outcome.text == expected
    assert not same, "the recorded answer (empty here) differs from the replayed one"
    assert replay_question(question(facts=("--cache-clear",)), {**row, "answer": expected})[1]


def test_a_replay_abstains_when_the_recorded_evidence_is_weak():
    row = recorded_row("Unrelated text.", terms=("cache", "clear", "nginx"), held=((),),
                       frequencies={"cache": 5, "clear": 5, "nginx": 1})
    outcome, _ = replay_question(question(answerable=False), row)
    assert outcome.abstained and outcome.correct
