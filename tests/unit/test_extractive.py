"""Extracts without an LLM: the best passage's decisive span, its heading path, short supporting quotes."""
import re

from core.answers.extractive import EXTRACT_NOTE, extractive_answer
from core.ingest.chunking import chunk_sections
from core.ingest.loaders import load_document
from core.types import Passage


def passage(text, title="Guide", heading="", source="https://docs.example.com/guide"):
    return Passage(chunk_id=1, document_id=1, title=title, heading=heading, source=source, text=text, score=1.0)


def cited_numbers(text):
    return sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)})


def test_a_sentence_that_introduces_code_is_quoted_with_the_code_fenced_in_its_language():
    text = (
        "The cache is kept between runs.\n\n"
        "To clear the cache before a run, pass the flag:\n\n"
        "```bash\npytest --cache-clear\n```\n\n"
        "Other plugins may read it."
    )
    answer, cited = extractive_answer("How do I clear the cache before a run?", [passage(text, heading="Cache")])
    assert "> To clear the cache before a run, pass the flag:\n\n```bash\npytest --cache-clear\n```" in answer
    assert cited == [1]
    assert answer.endswith(EXTRACT_NOTE)


def test_the_heading_path_is_shown_as_context_and_headings_are_never_quoted():
    markdown = (
        "# How-to guides\n\nIntro to the guides.\n\n## Cache\n\nThe cache directory is set with the cache_dir option.\n\n"
        "## Logging\n\nLogs go to stderr."
    )
    doc = load_document(markdown.encode(), name="how-to.md")
    chunk = chunk_sections(doc.sections, max_tokens=200, overlap_tokens=20)[0]
    shown = passage(chunk.text, title=doc.title, heading="")  # the packed chunk names "Cache" inline
    answer, _ = extractive_answer("Which option sets the cache directory?", [shown])
    assert answer.startswith("From *How-to guides › Cache* [1]:")
    assert "> The cache directory is set with the cache_dir option." in answer
    quoted = [line for line in answer.splitlines() if line.startswith(">")]
    assert all("Cache" != line.strip("> ").strip() and "##" not in line for line in quoted)


def test_supporting_quotes_are_few_and_numbers_run_one_to_n_in_the_order_shown():
    passages = [
        passage("Unrelated text about logging output.", title="Logging"),
        passage("API keys are rotated with the revoke command, then a new key is created.", title="Keys"),
        passage("Rotating API keys monthly is what the security team recommends.", title="Security"),
        passage("API keys can be rotated from the admin page as well.", title="Admin"),
        passage("Some API keys never need rotating, since they expire.", title="Expiry"),
    ]
    answer, cited = extractive_answer("How do I rotate API keys?", passages)
    assert cited[0] == 2, "the best passage is quoted first, as [1]"
    assert 2 <= len(cited) <= 3, "at most two supporting quotes"
    assert cited_numbers(answer) == list(range(1, len(cited) + 1))
    assert "Unrelated text" not in answer
    assert len(set(cited)) == len(cited)


def test_an_answer_in_the_top_passage_is_quoted_from_it():
    top = passage(
        "Workers are started with the worker command. Use the concurrency option to set how many "
        "processes each worker runs.",
        title="Workers",
        heading="Starting workers",
    )
    other = passage("Concurrency is hard in general.", title="Blog")
    answer, cited = extractive_answer("How do I set the worker concurrency?", [top, other])
    assert cited[0] == 1
    assert "Use the concurrency option to set how many processes each worker runs." in answer
