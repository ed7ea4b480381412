"""Which questions lean on the thread before them, and which stand alone (a new topic)."""
import pytest

from core.questions.conversations import Turn, heuristic_standalone_query
from core.questions.follow_ups import depends_on_history, follow_up_signal


@pytest.mark.parametrize(
    "question, signal",
    [
        ("and for async?", "opener"),
        ("What about Windows?", "opener"),
        ("how about the session scope?", "opener"),
        ("what if I only want its path?", "opener"),
        ("Also, can I pass a timeout?", "opener"),
        ("how do I test that?", "reference"),
        ("is it undone after the test?", "reference"),
        ("where are they stored?", "reference"),
        ("how do I turn those warnings into errors?", "reference"),
        ("does that work on CI?", "reference"),
        ("how do I turn that capturing off?", "reference"),
        ("where do I put that hook?", "reference"),
        ("Ignore that and what about Discord?", "opener"),
        ("can this be done automatically for every option?", "reference"),
        ("which one is faster?", "reference"),
        ("can I match the message of the exceptions inside it?", "reference"),
        ("can I use it in a fixture too?", "reference"),
        ("that's still failing, why?", "reference"),
        ("What’s the default?", "short"),
        ("why?", "short"),
        ("examples?", "short"),
    ],
)
def test_a_follow_up_that_needs_the_history_is_detected(question, signal):
    assert follow_up_signal(question) == signal


@pytest.mark.parametrize(
    "question",
    [
        "How do I capture log messages in a test?",
        "How do I install pytest?",
        "How do I test that a function raises a ValueError?",
        "How do I make sure that my fixture runs once per module?",
        "How do I register custom markers so that unknown markers are an error?",
        "How do I test code that raises an ExceptionGroup?",
        "How do I write an option that takes a list?",
        "How do I rerun tests that fail?",
        "How do I get output that is colored?",
        "Is it possible to run tests in parallel?",
        "Isn't it possible to run tests in parallel?",
        "What's the difference between a fixture and a setup function?",
        "Is there a way to show the slowest tests?",
        "How do I run the same test function with several sets of arguments?",
        "How do I find the folder where my application should store its configuration?",
        "How many questions can a user ask per minute?",
        "Unrelated: can I stream the response instead?",
        "different question: how do I serve a folder of images?",
        "By the way, how do I change the log level?",
    ],
)
def test_a_question_that_names_its_own_topic_stands_alone(question):
    assert not depends_on_history(question)


HISTORY = [
    Turn("user", "How do I share a fixture across a module?", "How do I share a fixture across a module?"),
    Turn("assistant", "Use scope='module' [1]."),
]


def test_without_an_llm_a_follow_up_searches_with_the_previous_query():
    query = heuristic_standalone_query("and across the whole session?", HISTORY)
    assert query == "and across the whole session? How do I share a fixture across a module?"


def test_without_an_llm_a_new_topic_searches_exactly_as_in_a_fresh_thread():
    question = "How do I capture log messages?"  # short, but it names its own topic
    assert heuristic_standalone_query(question, HISTORY) == question
