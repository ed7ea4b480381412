"""Command-line options in a question are found as written, and nothing else is taken for one."""
import pytest

from core.search.options import options_in, without_options


@pytest.mark.parametrize(
    "question, options",
    [
        ("what does -x do in pytest", ["-x"]),
        ("what is -s for", ["-s"]),
        ("pytest --tb=short", ["--tb"]),  # the value is left to the question's words
        ("how do I use -p no:cacheprovider", ["-p"]),
        ("-vv or --verbose --verbose?", ["-vv", "--verbose"]),
        ("is --collect-only the same as --co?", ["--collect-only", "--co"]),
        ("--with-xyz/--without-xyz", ["--with-xyz", "--without-xyz"]),
        ("`-k EXPRESSION`", ["-k"]),
        ("a b -c -d -e -f -g", ["-c", "-d", "-e", "-f"]),  # a pasted command line: its first four
    ],
)
def test_the_options_a_question_names_are_found(question, options):
    assert options_in(question) == options


@pytest.mark.parametrize(
    "question",
    ["x-axis labels", "e-mail and pre-commit hooks", "run -1 tests", "python 3.11 - what changed", "a -- b", "---"],
)
def test_hyphenated_words_numbers_and_dashes_are_not_options(question):
    assert options_in(question) == []


def test_the_words_around_the_options_are_kept():
    assert without_options("pytest --tb=short -x", ["--tb", "-x"]).split() == ["pytest", "=short"]
    assert without_options("run -x, not --x or -xz", ["-x"]).split() == ["run", ",", "not", "--x", "or", "-xz"]
