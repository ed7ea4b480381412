"""Answer text helpers: invented citations removed, the rest numbered in the order shown."""
from core.answers.llm import renumber_citations, strip_invalid_citations


def test_citations_pointing_at_no_source_are_removed():
    text, cited = strip_invalid_citations("Keys rotate [2]. Never [0] or [9]. Again [2][1].", 3)
    assert text == "Keys rotate [2]. Never or. Again [2][1]."
    assert cited == [2, 1]


def test_code_is_left_alone_when_citations_are_stripped():
    answer = "Run it [1]:\n```python\n    items[10] = 1  # [9]\n```\nThen `arr[7]` too [8]."
    text, cited = strip_invalid_citations(answer, 2)
    assert text == "Run it [1]:\n```python\n    items[10] = 1  # [9]\n```\nThen `arr[7]` too."
    assert cited == [1]


def test_citations_are_renumbered_in_the_order_shown_outside_code():
    text, cited = strip_invalid_citations("Keys rotate [3]. Limits [1][3]. `a[3]` stays [9].", 4)
    assert cited == [3, 1]
    assert renumber_citations(text, cited) == "Keys rotate [1]. Limits [2][1]. `a[3]` stays."
