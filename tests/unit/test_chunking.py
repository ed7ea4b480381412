"""Chunking keeps structure: headings first, then a token budget with overlap."""
from core.ingest.chunking import chunk_sections, count_tokens
from core.ingest.loaders import Section


def section(path, text, anchor=None):
    return Section(heading_path=tuple(path), anchor=anchor, text=text)


def test_small_sibling_sections_are_packed_under_the_first_heading():
    chunks = chunk_sections(
        [section(["Guide"], "Intro text.", "guide"), section(["Guide", "Install"], "Run pip install.", "install")],
        max_tokens=100,
        overlap_tokens=10,
    )
    assert len(chunks) == 1
    assert chunks[0].anchor == "guide"
    assert "## Install\nRun pip install." in chunks[0].text  # the later heading stays searchable, marked as one


def test_sections_of_different_top_level_parts_are_not_packed():
    chunks = chunk_sections(
        [section(["Guide"], "Intro.", "guide"), section(["Reference"], "Flags.", "reference")],
        max_tokens=100,
        overlap_tokens=10,
    )
    assert [c.anchor for c in chunks] == ["guide", "reference"]


def test_long_section_is_split_within_budget_with_overlap():
    paragraphs = [f"Paragraph {i} explains step {i} of the deployment in some detail here." for i in range(40)]
    chunks = chunk_sections([section(["Deploy"], "\n\n".join(paragraphs), "deploy")], max_tokens=60, overlap_tokens=15)

    assert len(chunks) > 5
    assert all(c.token_count <= 60 for c in chunks)
    assert all(c.anchor == "deploy" and c.heading == "Deploy" for c in chunks)
    for before, after in zip(chunks, chunks[1:]):
        assert before.text.split("\n\n")[-1] in after.text  # the last paragraph is repeated as overlap
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_a_run_on_line_is_cut_between_words():
    text = " ".join(f"word{i}" for i in range(1000))
    chunks = chunk_sections([section([], text)], max_tokens=100, overlap_tokens=0)
    assert all(c.token_count <= 100 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_token_count_counts_words_and_punctuation():
    assert count_tokens("Hello, world!") == 4


def test_inline_code_marks_do_not_move_chunk_boundaries():
    # Loaders keep inline code as `code`: the same page must still split where it did unmarked.
    plain = "\n\n".join(f"Pass --option-{n} to set value_{n} for the run." for n in range(30))
    marked = "\n\n".join(f"Pass `--option-{n}` to set `value_{n}` for the run." for n in range(30))

    def cut(text):
        return [c.text.replace("`", "") for c in chunk_sections([section(["Ref"], text)], max_tokens=60, overlap_tokens=10)]

    assert len(cut(plain)) > 1
    assert cut(marked) == cut(plain)
