"""Answer text helpers: invented citations removed; extracts quote the best sentences."""
from core.extractive import EXTRACT_NOTE, extractive_answer
from core.llm import strip_invalid_citations
from core.types import Passage


def test_citations_pointing_at_no_source_are_removed():
    text, cited = strip_invalid_citations("Keys rotate [2]. Never [0] or [9]. Again [2][1].", 3)
    assert text == "Keys rotate [2]. Never or. Again [2][1]."
    assert cited == [2, 1]


def test_code_is_left_alone_when_citations_are_stripped():
    answer = "Run it [1]:\n```python\n    items[10] = 1  # [9]\n```\nThen `arr[7]` too [8]."
    text, cited = strip_invalid_citations(answer, 2)
    assert text == "Run it [1]:\n```python\n    items[10] = 1  # [9]\n```\nThen `arr[7]` too."
    assert cited == [1]


def passage(text, title="Doc"):
    return Passage(chunk_id=1, document_id=1, title=title, heading="", source="https://x/doc", text=text, score=1.0)


def test_extract_quotes_matching_sentences_with_their_source_number():
    passages = [
        passage("The sky is often blue in summer. API keys are rotated with the revoke command. Cats sleep."),
        passage("Rotating API keys monthly is recommended by the security team.", title="Security"),
    ]
    answer, cited = extractive_answer("How do I rotate API keys?", passages)
    assert cited == [1, 2]
    assert "> API keys are rotated with the revoke command. [1]" in answer
    assert "> Rotating API keys monthly is recommended by the security team. [2]" in answer
    assert "Cats sleep" not in answer
    assert answer.endswith(EXTRACT_NOTE)
