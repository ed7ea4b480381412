"""Rendering answers for Discord, without a network: splitting, the sources embed, texts, ids."""
from __future__ import annotations

import re

import pytest

from adapters.discord.events import strip_mention, thread_name
from adapters.discord.feedback import custom_id, parse_custom_id
from adapters.discord.render import error_text, sources_embed, split_message
from core.errors import InvalidQuestion, RateLimited, UpstreamUnavailable
from core.types import Citation

LIMIT = 2000


def paragraph(n: int, words: int = 60) -> str:
    return " ".join(f"word{n}_{i}" for i in range(words)) + "."


def assert_fences_balanced(parts: list[str]) -> None:
    for part in parts:
        assert part.count("```") % 2 == 0, part[:80]


def test_a_short_answer_is_one_unchanged_message() -> None:
    text = "Install it:\n```bash\npip install docrag\n```\nThen run `docrag ask`."
    assert split_message(text) == [text]


def test_long_prose_is_split_at_paragraph_boundaries() -> None:
    paragraphs = [paragraph(n) for n in range(12)]  # ~700 characters each
    text = "\n\n".join(paragraphs)

    parts = split_message(text)

    assert len(parts) > 1 and all(len(p) <= LIMIT for p in parts)
    assert "\n\n".join(parts) == text  # nothing lost, and every cut is between paragraphs
    assert all(p.split("\n\n")[0] in paragraphs for p in parts)


def test_a_giant_paragraph_is_split_between_words() -> None:
    text = paragraph(1, words=600)  # one line of ~6000 characters

    parts = split_message(text)

    assert all(len(p) <= LIMIT for p in parts)
    assert " ".join(parts) == text
    assert {w for p in parts for w in p.split()} <= set(text.split())


def test_a_code_block_that_fits_is_moved_whole_to_the_next_message() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(100)) + "\n```"
    text = paragraph(1, words=150) + "\n\n" + code

    parts = split_message(text)

    assert len(parts) == 2 and parts[1] == code


def test_a_code_block_longer_than_a_message_is_closed_and_reopened() -> None:
    lines = [f"    step_{i:03d} = run('docrag ingest docs/{i}')  # keep indentation" for i in range(90)]
    text = "Do this:\n\n```python\n" + "\n".join(lines) + "\n```\n\nDone."

    parts = split_message(text)

    assert len(parts) >= 3 and all(len(p) <= LIMIT for p in parts)
    assert_fences_balanced(parts)
    blocks = [re.findall(r"```python\n(.*?)\n```", p, re.S) for p in parts]
    assert sum(len(b) for b in blocks) >= 2
    kept = [line for found in blocks for block in found for line in block.splitlines()]
    assert kept == lines  # every line whole, in order, indentation kept
    assert parts[0].startswith("Do this:") and parts[-1].endswith("Done.")


def test_blank_lines_inside_a_code_block_do_not_split_it() -> None:
    code = "```\nfirst()\n\n\nsecond()\n```"
    text = paragraph(1, words=209) + "\n\n" + code  # 1980 characters: room for the first line only
    parts = split_message(text)
    assert len(parts) == 2 and any(code in p for p in parts)


def test_an_unclosed_fence_is_closed() -> None:
    text = paragraph(1, words=250) + "\n\n```sql\nSELECT 1;"
    parts = split_message(text)
    assert len(parts) == 2 and parts[-1].endswith("\n\n```sql\nSELECT 1;\n```")
    assert_fences_balanced(parts)


def test_a_word_longer_than_a_message_is_cut_as_a_last_resort() -> None:
    parts = split_message("x" * 4500)
    assert [len(p) for p in parts] == [2000, 2000, 500]


def test_sources_embed_links_numbered_titles() -> None:
    embed = sources_embed(
        [
            Citation(1, "Getting started", "https://docs.example.com/start#install", "Install"),
            Citation(2, "Weird [title]", "https://docs.example.com/a b(c)", ""),
            Citation(3, "Local notes", "file:///srv/docs/notes.md", ""),
        ]
    )
    assert embed is not None and embed.title == "Sources"
    lines = (embed.description or "").splitlines()
    assert lines[0] == "**[1]** [Getting started — Install](https://docs.example.com/start#install)"
    assert lines[1] == "**[2]** [Weird (title)](https://docs.example.com/a%20b(c%29)"
    assert lines[2].startswith("**[3]** Local notes") and "](" not in lines[2]  # a file path is no link


def test_sources_embed_stays_within_discord_limits() -> None:
    citations = [Citation(n, "T" * 400, f"https://docs.example.com/{'p' * 300}/{n}", "H" * 100) for n in range(1, 60)]
    embed = sources_embed(citations)

    assert embed is not None
    assert len(embed.title or "") <= 256 and len(embed.description or "") <= 4096
    assert len(embed) <= 6000
    assert re.search(r"…and \d+ more$", embed.description or "")


def test_no_citations_no_embed_and_weak_answers_say_so() -> None:
    assert sources_embed([]) is None
    embed = sources_embed([Citation(1, "A", "https://a.example/", "")], grounded=False)
    assert embed is not None and embed.title and embed.title.startswith("Closest sources")


def test_errors_speak() -> None:
    limited = RateLimited("Too many questions from you right now: please ask again in 40 seconds.", retry_after_s=40, scope="user")
    outage = UpstreamUnavailable("openai", "500", reference="abc123")
    assert "ask again in 40 seconds" in error_text(limited)
    assert "Sorry" in error_text(outage) and "`abc123`" in error_text(outage)
    assert error_text(InvalidQuestion("The question is empty.")) == "The question is empty."
    assert re.search(r"reference `\w+`", error_text(RuntimeError("database down")))


@pytest.mark.parametrize("score", [1, -1])
def test_feedback_custom_id_round_trip(score: int) -> None:
    value = custom_id(score, 98765432101234)
    assert value == f"docrag:fb:{'+1' if score > 0 else '-1'}:98765432101234" and len(value) <= 100
    assert parse_custom_id(value) == (score, 98765432101234)
    assert parse_custom_id("someone-else:button") is None


def test_thread_names_fit_discord() -> None:
    assert thread_name("how do I   ingest\n a sitemap?") == "how do I ingest a sitemap?"
    long = thread_name("why " * 60)
    assert len(long) <= 100 and long.endswith("why…")
    assert thread_name("<@123456789012345678>") == "DocRag answer"


def test_only_the_bots_own_mention_is_stripped() -> None:
    assert strip_mention("<@42> how do I ask <@7>?", 42) == "how do I ask <@7>?"
    assert strip_mention("hey <@!42>   what now", 42) == "hey what now"
