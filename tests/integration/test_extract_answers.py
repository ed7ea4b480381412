"""Extracts end to end (ingest -> engine -> every door): decisive span with its code and heading
path, numbering 1..n that matches the sources listed, and an honest "not covered"."""
import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console

from adapters.discord.render import sources_embed, split_message
from adapters.slack.render import render_answer as slack_answer
from adapters.web.playground import _view as playground_view
from bots.cli import render_answer as cli_answer
from core.storage.models import DocumentChunk
from core.types import Answer, SessionKey
from tests.fakes.openai_server import FakeOpenAI

BASE = "https://docs.example.com"
DOCS = {
    "how-to.md": """# How-to guides

These guides solve one task each.

## Cache

The cache is kept between runs in a hidden folder.

To clear the cache before a test run, pass the flag:

```bash
runner --cache-clear
```

## Output

Results are printed to the terminal as the tests run.
""",
    "workers.rst": """Workers
=======

Starting workers
----------------

Workers are started with the ``worker`` command. Start one with four processes like this:

.. code-block:: console

    $ tool worker --concurrency 4

The concurrency option sets how many processes each worker runs.
""",
    "faq.md": """# FAQ

## Cache folder

The cache folder can be cleared by hand: the runner recreates it on the next run.
""",
    "changelog.md": """# Changelog

## 2.0

The cache clearing flag is faster: clearing the cache no longer walks every file.
""",
}


def key(thread: str = "t1") -> SessionKey:
    return SessionKey(platform="test", workspace="w1", channel="c1", thread=thread, user="u1")


@pytest.fixture
def docs(container, tmp_path: Path):
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text)
    container.ingestor.ingest([str(root)], collection="default", base_url=BASE)
    return container


def numbers_in(text: str) -> list[int]:
    return sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)})


def test_a_sentence_that_introduces_code_is_quoted_with_its_code_under_its_heading_path(docs):
    answer = docs.engine.ask(key(), "How do I clear the cache before a test run?")

    assert answer.grounded
    assert answer.text.startswith("From *How-to guides › Cache* [1]:")
    assert "> To clear the cache before a test run, pass the flag:\n\n```bash\nrunner --cache-clear\n```" in answer.text
    assert answer.citations[0].source.startswith(f"{BASE}/how-to.md#")
    quoted = [line[2:] for line in answer.text.splitlines() if line.startswith("> ")]
    assert not {"Cache", "How-to guides", "Output"} & set(quoted), "headings are context, never quotes"


def test_code_from_restructuredtext_keeps_its_language_and_the_answer_in_the_top_source_is_given(docs):
    answer = docs.engine.ask(key(), "How do I start a worker with four processes?")

    assert answer.grounded
    assert answer.citations[0].title == "Workers"
    assert "```console\n$ tool worker --concurrency 4\n```" in answer.text
    assert answer.text.startswith("From *Workers › Starting workers* [1]:")


def test_citation_numbers_run_one_to_n_and_match_the_sources_listed(docs):
    answer = docs.engine.ask(key(), "How do I clear the cache folder?")

    assert answer.grounded
    listed = [c.n for c in answer.citations]
    assert listed == list(range(1, len(listed) + 1))
    assert numbers_in(answer.text) == listed, "every source listed is cited, every citation listed"
    assert len({c.source for c in answer.citations}) == len(listed)


def test_every_door_shows_the_same_numbers_as_the_sources_it_lists(docs):
    answer = docs.engine.ask(key(), "How do I clear the cache folder?")
    listed = [c.n for c in answer.citations]
    assert len(listed) >= 2, "the question draws on several documents"

    slack = slack_answer(answer)
    body = "\n".join(b["text"]["text"] for b in slack.blocks if b["type"] == "section")
    sources = next(b for b in slack.blocks if b["type"] == "context" and b["elements"][0]["text"] == "*Sources*")
    assert numbers_in(body) == listed
    assert [int(re.match(r"\[(\d+)\]", e["text"]).group(1)) for e in sources["elements"][1:]] == listed

    discord_body = "\n".join(split_message(answer.text))
    embed = sources_embed(answer.citations, answer.grounded)
    assert numbers_in(discord_body) == listed
    assert [int(n) for n in re.findall(r"\*\*\[(\d+)\]\*\*", embed.description)] == listed

    turn = {"id": 7, "role": "assistant", "text": answer.text, "citations": [c.__dict__ for c in answer.citations]}
    view = playground_view(turn, "default")
    linked = sorted({int(n) for n in re.findall(r'class="cite" href="#m7-(\d+)"', str(view["html"]))})
    assert linked == listed and [s["n"] for s in view["sources"]] == listed

    printed = io.StringIO()
    cli_answer(answer, Console(file=printed, width=200))  # not a terminal: plain text
    terminal = printed.getvalue()
    text, _, source_list = terminal.partition("\nSources:")
    assert numbers_in(text) == listed
    assert [int(n) for n in re.findall(r"^\s+\[(\d+)\]", source_list, re.M)] == listed


def test_a_question_the_documents_do_not_answer_lists_the_closest_sources_as_links_without_extracts(docs):
    answer = docs.engine.ask(key(), "What does the hosted enterprise plan cost per seat?")

    assert not answer.grounded
    assert answer.text.startswith("I couldn't find this in the documentation, so I won't guess.")
    assert ">" not in answer.text and "```" not in answer.text, "nothing is quoted"
    listed = [c.n for c in answer.citations]
    assert listed and listed == list(range(1, len(listed) + 1)) == numbers_in(answer.text)
    assert all(c.source.startswith(BASE) for c in answer.citations)
    slack_sources = slack_answer(answer).blocks[-2 if answer.message_id else -1]
    assert all(f"<{BASE}" in e["text"] for e in slack_sources["elements"][1:]), "closest sources are links"


def test_an_llm_answer_citing_only_its_third_source_shows_it_as_one(make_container, docs, tmp_path):
    with FakeOpenAI() as fake:
        fake.chat_responder = lambda body: "Clear it by hand [3]. Or pass the flag [9]."
        container = make_container(llm="openai", openai_base_url=fake.base_url, llm_max_retries=0, llm_timeout_s=1.0)
        answer = container.engine.ask(key("t-llm"), "How do I clear the cache folder?")

    assert answer.text == "Clear it by hand [1]. Or pass the flag."
    assert [c.n for c in answer.citations] == [1]


def test_the_not_covered_answer_with_no_passages_at_all_says_so():
    from core.answers.pipeline import not_covered

    answer = not_covered([])
    assert isinstance(answer, Answer) and not answer.grounded and not answer.citations
    assert "couldn't find this" in answer.text


def test_neighbouring_chunks_of_a_long_section_are_shown_once_without_their_overlap(container, tmp_path: Path):
    # Found in marshmallow's docs: a sentence repeated as chunk overlap was quoted twice.
    paragraphs = [f"Step {n}: the frobnicator reads setting number {n} from its configuration file." for n in range(40)]
    root = tmp_path / "long"
    root.mkdir()
    (root / "guide.md").write_text("# Frobnicator guide\n\n" + "\n\n".join(paragraphs) + "\n")
    report = container.ingestor.ingest([str(root)], collection="default")
    assert report.chunks >= 2, "the section is long enough to be chunked with overlap"

    passages = container.engine.search("frobnicator setting configuration file", collection="default", limit=6)

    merged = [p for p in passages if sum(p.text.count(f"Step {n}:") for n in range(40)) > 0]
    assert merged
    for passage in merged:
        shown = [line for line in passage.text.split("\n\n") if line.startswith("Step ")]
        assert len(shown) == len(set(shown)), "no paragraph is repeated"
        numbers = [int(line.split()[1].rstrip(":")) for line in shown]
        assert numbers == sorted(numbers)
    with container.database.sessions() as session:
        stored = session.scalars(sa.select(DocumentChunk.text)).all()
    longest_chunk = max(len(text.split("\n\n")) for text in stored)
    assert any(len(p.text.split("\n\n")) > longest_chunk for p in merged), "two neighbouring chunks make one passage"


def test_inline_code_from_the_documents_is_shown_as_code_in_every_door(container, tmp_path: Path):
    # Found in attrs' docs: "attach a `__setattr__` method" reached Slack, Discord and the terminal
    # as plain "__setattr__", which each of them renders as bold or underlined "setattr".
    root = tmp_path / "dunder"
    root.mkdir()
    (root / "frozen.md").write_text(
        "# Immutability\n\nTo make instances immutable, the library attaches a `__setattr__` method that "
        "raises whenever anyone sets an attribute; pass `**kwargs` through unchanged.\n"
    )
    (root / "frozen.rst").write_text(
        "Frozen rST\n==========\n\nTo freeze instances, override ``__delattr__`` as well, see :meth:`~pkg.C.__init__`.\n"
    )
    container.ingestor.ingest([str(root)], collection="default")

    md = container.engine.ask(key("md"), "how are instances made immutable with __setattr__?")
    rst = container.engine.ask(key("rst"), "how do I freeze instances with __delattr__?")

    assert md.grounded and rst.grounded
    assert "`__setattr__`" in md.text and "`**kwargs`" in md.text
    assert "`__delattr__`" in rst.text and "`pkg.C.__init__`" in rst.text
    slack = "\n".join(b["text"]["text"] for b in slack_answer(md).blocks if b["type"] == "section")
    assert "`__setattr__`" in slack and "*setattr*" not in slack
    printed = io.StringIO()
    cli_answer(md, Console(file=printed, width=200))
    assert "__setattr__" in printed.getvalue() and "**kwargs" in printed.getvalue()
