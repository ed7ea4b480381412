"""Answers as Slack messages: Markdown -> mrkdwn, escaping, and Slack's size limits (no database)."""
from __future__ import annotations

from adapters.slack.mrkdwn import split, to_mrkdwn
from adapters.slack.render import render_answer, render_question
from core.types import Answer, Citation
from tests.slack.harness import assert_within_slack_limits, block_text


def test_markdown_becomes_slack_mrkdwn():
    text = to_mrkdwn(
        "## Rotating **keys**\n"
        "Use **bold**, *italic*, ~~old~~ and [the guide](https://ex.com/a?x=1&y=2).\n"
        "- first\n* second\n"
        "> quoted [1]"
    )
    assert text.splitlines() == [
        "*Rotating keys*",
        "Use *bold*, _italic_, ~old~ and <https://ex.com/a?x=1&y=2|the guide>.",
        "• first",
        "• second",
        "> quoted [1]",
    ]


def test_only_ampersand_and_angle_brackets_are_escaped_outside_links_and_code_is_kept():
    text = to_mrkdwn("a <b> & c <!channel> <@U123>\n```python\nif a < b and **c**:\n```\nuse `x<y`")
    assert text.splitlines() == [
        "a &lt;b&gt; &amp; c &lt;!channel&gt; &lt;@U123&gt;",  # no pings smuggled in through documents
        "```",
        "if a &lt; b and **c**:",  # code is not re-formatted
        "```",
        "use `x&lt;y`",
    ]


def test_links_cannot_be_broken_out_of():
    assert to_mrkdwn("[a|b>c](https://ex.com/x|y>z)") == "<https://ex.com/x%7Cy%3Ez|a¦b&gt;c>"


def test_split_keeps_code_blocks_renderable_and_never_cuts_links():
    body = "```\n" + "x = 1\n" * 900 + "```\n" + ("see <https://ex.com/page|a page> " * 200)
    pieces = split(body, 3000)
    assert all(len(p) <= 3000 for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)
    assert all(p.count("<") == p.count(">") for p in pieces)


def answer(text: str, *, sources: int = 3) -> Answer:
    citations = [Citation(n, f"Title {n}", f"https://docs.example.com/{n}", f"Heading {n}")
                 for n in range(1, sources + 1)]
    return Answer(text, citations, message_id=42)


def test_an_answer_has_sections_sources_buttons_and_a_fallback():
    reply = render_answer(answer("To rotate, click **Rotate** [1]."))
    types = [b["type"] for b in reply.blocks]
    assert types == ["section", "context", "actions"]
    assert reply.text == "To rotate, click *Rotate* [1]."
    assert "[1] <https://docs.example.com/1|Title 1 — Heading 1>" in block_text({"blocks": reply.blocks})
    assert {e["value"] for e in reply.blocks[-1]["elements"]} == {"42"}
    assert_within_slack_limits(reply.__dict__)


def test_a_huge_answer_stays_within_block_and_message_limits_with_a_note():
    paragraph = "A sentence about rotating keys & <tokens> that goes on. " * 40
    reply = render_answer(answer("\n\n".join([paragraph] * 60), sources=20))
    assert_within_slack_limits(reply.__dict__)
    assert "shortened" in block_text({"blocks": reply.blocks})
    assert len(reply.text) <= 3000
    assert len(reply.blocks[-2]["elements"]) == 10  # "Sources" + nine: a context block's maximum


def test_many_short_paragraphs_never_exceed_fifty_blocks():
    reply = render_answer(answer("\n\n".join(["```\ncode\n```"] * 400)))
    assert_within_slack_limits(reply.__dict__)


def test_local_sources_are_named_not_linked():
    reply = render_answer(Answer("x [1]", [Citation(1, "Guide <v2>", "file:///srv/docs/guide.md")], message_id=1))
    assert "[1] Guide &lt;v2&gt;" in block_text({"blocks": reply.blocks})


def test_the_asked_question_is_escaped():
    reply = render_question("U1", "why <!here> & <@U2>?")
    assert reply.text == "*<@U1> asked:* why &lt;!here&gt; &amp; &lt;@U2&gt;?"
