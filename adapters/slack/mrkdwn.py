"""Markdown (what the LLM and the documents speak) -> Slack mrkdwn.

Slack needs only ``&``, ``<`` and ``>`` escaped; links are ``<url|text>``; bold is ``*x*``,
italic ``_x_``, strike ``~x~``; there are no headings. Code (fenced or inline) is kept as it is,
except for the three escapes, which Slack needs everywhere in message text.
"""
from __future__ import annotations

import re
from urllib.parse import quote

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_QUOTE = re.compile(r"^(\s*(?:>\s?)+)(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
# Spans that must not be escaped or re-formatted: inline code, links/images, autolinks.
_PROTECTED = re.compile(
    r"(?P<code>(`+)(?:.+?)\2)"
    r"|(?P<link>!?\[(?P<label>[^\]\n]+)\]\((?P<url>[^)\s]+)(?:\s+\"[^\"]*\")?\))"
    r"|(?P<auto><(?P<bare>(?:https?|mailto):[^>\s]+)>)"
)
_SLOT = "\x00{}\x00"
_SLOT_RE = re.compile("\x00(\\d+)\x00")
_ITALIC = re.compile(r"(?<![*\w\x00])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_EMPHASIS_MARKS = re.compile(r"(\*\*|__|~~|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w))")


def escape(text: str) -> str:
    """The only three characters Slack needs escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    """``<url|label>``; characters that would end the link early are encoded or replaced."""
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%~.-_")
    safe_label = escape(label).replace("|", "¦")
    return f"<{safe_url}|{safe_label}>" if safe_label else f"<{safe_url}>"


def to_mrkdwn(markdown: str) -> str:
    lines: list[str] = []
    in_code = False
    for line in markdown.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
            lines.append("```")  # Slack shows a language tag as text: drop it
        elif in_code:
            lines.append(escape(line))
        else:
            lines.append(_convert_line(line))
    if in_code:
        lines.append("```")  # an unclosed fence would swallow the rest of the message
    return "\n".join(lines)


def _convert_line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    heading = _HEADING.match(line)
    if heading:
        text = _EMPHASIS_MARKS.sub("", heading.group(1))
        return f"*{_inline(text)}*" if text else ""
    quote_match = _QUOTE.match(line)
    if quote_match:
        # Slack's quote marker is a literal ">" at the start of the line: it must stay unescaped.
        depth = quote_match.group(1).count(">")
        return ">" * depth + " " + _convert_line(quote_match.group(2)).lstrip()
    bullet = _BULLET.match(line)
    if bullet:
        return f"{bullet.group(1)}• {_inline(bullet.group(2))}"
    return _inline(line)


def _inline(text: str) -> str:
    """Escape and convert emphasis outside protected spans, then put the spans back."""
    spans: list[str] = []

    def keep(match: re.Match[str]) -> str:
        spans.append(_render_span(match))
        return _SLOT.format(len(spans) - 1)

    text = escape(_PROTECTED.sub(keep, text))
    text = _ITALIC.sub(r"_\1_", text)
    text = _BOLD.sub(r"*\2*", text)
    text = _STRIKE.sub(r"~\1~", text)
    return _SLOT_RE.sub(lambda m: spans[int(m.group(1))], text)


def _render_span(match: re.Match[str]) -> str:
    if match.group("code"):
        return escape(match.group("code"))
    if match.group("link"):
        return link(match.group("url"), _EMPHASIS_MARKS.sub("", match.group("label")))
    return link(match.group("bare"), "")


def split(text: str, limit: int) -> list[str]:
    """Cut mrkdwn into pieces of at most ``limit`` characters, at line ends where possible.

    A code block cut in two is closed and reopened so each piece renders on its own; links and
    entities are never cut.
    """
    chunks: list[str] = []
    current: list[str] = []
    in_code = False

    def size(lines: list[str]) -> int:
        return len("\n".join(lines)) + (4 if in_code else 0)  # room to close an open fence

    for line in text.split("\n"):
        for piece in _hard_wrap(line, limit - 8):
            if current and size(current + [piece]) > limit:
                chunks.append("\n".join(current + (["```"] if in_code else [])))
                current = ["```"] if in_code else []
            current.append(piece)
        if line.strip() == "```":
            in_code = not in_code
    if current and any(part.strip() for part in current):
        chunks.append("\n".join(current))
    return [chunk for chunk in chunks if chunk.strip()]


def _hard_wrap(line: str, width: int) -> list[str]:
    pieces = []
    while len(line) > width:
        cut = _safe_cut(line, width)
        pieces.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    pieces.append(line)
    return pieces


def _safe_cut(line: str, width: int) -> int:
    cut = line.rfind(" ", 0, width)
    if cut <= width // 2:
        cut = width
    opened, closed = line.rfind("<", 0, cut), line.rfind(">", 0, cut)
    if opened > closed and opened > 0:
        cut = opened  # do not cut inside <url|label>
    amp = line.rfind("&", 0, cut)
    if amp > 0 and cut - amp < 6 and ";" not in line[amp:cut]:
        cut = amp  # nor inside &amp; / &lt; / &gt;
    return cut
