"""Bytes to clean text: decoding, invisible characters, whitespace and code-block normalisation."""
from __future__ import annotations

import codecs
import re
import unicodedata

_CHARSET_RE = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.I)
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.I)
_UTF8_NAMES = {"utf-8", "utf8", "utf_8"}

from core.errors import DocumentError


def decode(data: bytes, content_type: str | None, *, sniff_html_meta: bool = False) -> str:
    """UTF-8 (BOM tolerated; UTF-16 only with a BOM), else a charset the server or page declared."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return clean_decoded(data.decode("utf-16"))
        except UnicodeDecodeError:
            raise DocumentError("not valid UTF-16 text (it starts with a UTF-16 byte order mark)") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        declared = None
        m = _CHARSET_RE.search(content_type or "")
        if m:
            declared = m.group(1)
        elif sniff_html_meta:
            mm = _META_CHARSET_RE.search(data[:4096])
            if mm:
                declared = mm.group(1).decode("ascii", "replace")
        if declared and declared.lower() not in _UTF8_NAMES:
            try:
                text = data.decode(declared)
            except (LookupError, UnicodeDecodeError):
                raise DocumentError(f"not valid {declared} text (the declared character set)") from None
        else:
            raise DocumentError(
                f"not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
            ) from None
    return clean_decoded(text)


def clean_decoded(text: str) -> str:
    if "\x00" in text:
        raise DocumentError("binary data, not text (it contains NUL bytes)")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)


def collapse(s: str) -> str:
    """Collapse whitespace runs to one space (line breaks included)."""
    return " ".join(s.split())


def normalise(text: str, *, keep_indent: bool = True) -> str:
    """Trim lines, collapse spaces inside lines, keep at most one blank line between paragraphs.

    With ``keep_indent`` the leading indentation of a line is kept (nested list items,
    hand-indented plain text)."""
    out: list[str] = []
    blank = False
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped:
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        if keep_indent and line[0] in " \t":
            indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
            out.append(" " * indent + " ".join(stripped.split()))
        else:
            out.append(" ".join(stripped.split()))
    return "\n".join(out)


def normalise_code(code: str) -> str:
    """Code keeps its indentation; only trailing spaces and outer blank lines go."""
    lines = [ln.rstrip() for ln in code.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


# Sphinx and MyST roles whose text is prose on the built page; the others (meth, func, class,
# option...) name code and are shown as code.
PROSE_ROLES = frozenset("ref doc term numref download kbd abbr guilabel menuselection sup sub math".split())
_ROLE_TARGET = re.compile(r"^(.*?)\s*<[^<>]*>$", re.S)


def role_text(inner: str) -> str:
    """What a cross-reference shows: ``Title <target>`` -> ``Title``, ``~a.b.c`` -> ``a.b.c``.

    The whole dotted name is kept where Sphinx's "~" shows only its last part: people ask for
    ``Context.invoke`` as often as for ``invoke``."""
    target = _ROLE_TARGET.match(inner)
    if target and target.group(1):
        inner = target.group(1)
    return inner.lstrip("~!")


def code_span(code: str) -> str:
    """Inline code as a Markdown code span, its delimiter longer than any backtick run inside."""
    code = code.strip()
    if not code:
        return ""
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", code)), default=0) + 1)
    pad = " " if code.startswith("`") or code.endswith("`") else ""
    return f"{ticks}{pad}{code}{pad}{ticks}"


def fenced(code: str, language: str = "") -> str:
    """A code block as Markdown fenced code, so answers can quote it as code (language kept).

    The fence is longer than any backtick run inside the code, so the code cannot close it."""
    code = normalise_code(code)
    if not code:
        return ""
    runs = [len(m) for m in re.findall(r"`{3,}", code)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    language = language.strip().split()[0] if language.strip() else ""
    return f"{fence}{language}\n{code}\n{fence}"


