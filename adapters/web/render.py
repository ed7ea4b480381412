"""Answers as safe HTML: Markdown with raw HTML switched off, so document text can never become markup.

markdown-it escapes every ``<`` that is not Markdown syntax and refuses ``javascript:``/``data:``
links; images are off (they would load from anywhere). The Content-Security-Policy is the second
wall, not the first.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markupsafe import Markup

_CITATION = re.compile(r"\[(\d{1,2})\]")


def _link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return self.renderToken(tokens, idx, options, env)


def _text(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """Plain text, escaped; a ``[n]`` with a source becomes a link to it (only in text, never in attributes)."""

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in env.get("citations", ()):
            return match.group(0)
        return f'<a class="cite" href="#{env["anchor_prefix"]}-{n}">[{n}]</a>'

    return _CITATION.sub(link, escapeHtml(tokens[idx].content))


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).disable("image")
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("text", _text)
    return md


_MD = _markdown()


def answer_html(text: str, *, anchor_prefix: str, citations: list[int]) -> Markup:
    """The answer as HTML; ``anchor_prefix`` must be a plain identifier (it goes into an href)."""
    env = {"anchor_prefix": anchor_prefix, "citations": set(citations)}
    return Markup(_MD.render(text, env))  # noqa: S704 - markdown-it output with raw HTML disabled


def safe_href(url: str) -> str | None:
    """A link target a browser may follow: http(s) only; anything else is shown as text."""
    return url if urlsplit(url).scheme.lower() in ("http", "https") else None
