"""Search snippets in the terminal: one line, cut at a word, an ellipsis when anything was cut."""
from bots.cli_render import snippet


def test_short_text_is_kept_whole_on_one_line():
    assert snippet("Rotate the key.\n\n  Then   wait.") == "Rotate the key. Then wait."


def test_long_text_ends_at_the_last_whole_word_with_an_ellipsis():
    text = "alpha beta gamma, delta epsilon"
    assert snippet(text, limit=19) == "alpha beta gamma…"  # not "alpha beta gamma, d…", no dangling comma
    assert len(snippet(text * 20)) <= 300


def test_a_word_longer_than_the_limit_is_cut_inside_it():
    assert snippet("x" * 50, limit=10) == "x" * 9 + "…"
