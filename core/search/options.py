"""Command-line options in a question (``-x``, ``-vv``, ``--lf``, ``--tb=short``), matched literally.

PostgreSQL's parser drops the dashes: ``-x`` becomes the lexeme ``x``, the same as every other x
(a variable, a coordinate, "x86"), and ``-s`` becomes the stopword ``s`` and vanishes. So the text
leg cannot tell the option from the letter, and the page documenting ``-x, --exitfirst`` ranked
below pages where x is a variable. Here each option the question names is found as written in the
chunks' headings and text (stored text, code spans and code blocks alike), with boundaries that
respect dashes: ``-x`` is not in ``--x``, ``-xyz``, ``x-axis`` or ``-x-ray``. Options are
case-sensitive (``-W`` is not ``-w``), as the programs that take them are.

To stay off a scan of the whole collection, the chunks are first narrowed by the GIN index on
their tsvectors to those holding the option's words (``x`` for ``-x``, ``last`` and ``fail`` for
``--last-failed``). An option made only of stopwords (``-s``, ``-a``, ``-o``) has no such words: it
is matched by reading the chunks' text, only in collections up to SCAN_MAX_CHUNKS chunks (measured:
~15 ms for 3,753 chunks, 2 MB of text, load 0.3).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.storage.models import TS_CONFIG

# An option: one or two dashes, a letter, then letters, digits, dashes or underscores; not preceded
# by a word character or a dash (so "x-axis", "e-mail" and "---" are not options). Its value
# (``=short`` in ``--tb=short``) is left to the words of the question.
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)(?![\w])")
MAX_OPTIONS = 4  # a question naming more is a command line pasted whole: its first four count
# Collections up to this size are read in full for an option that has no words of its own (``-s``).
SCAN_MAX_CHUNKS = 20_000
# At most this many chunks per option are kept, by how often they hold it: a very common option
# ("-m" in a large corpus) must not bring thousands of candidates to score.
MAX_MATCHES = 500


@dataclass(frozen=True)
class OptionMatches:
    option: str
    counts: dict[int, tuple[int, int]]  # chunk id -> (occurrences, those in the heading thrice; token count)


def options_in(question: str) -> list[str]:
    """The distinct options the question names, in order, without a trailing dash (``--foo-`` is ``--foo``)."""
    found: list[str] = []
    for match in _OPTION.finditer(question):
        option = match.group(1).rstrip("-_")
        if option not in found:
            found.append(option)
    return found[:MAX_OPTIONS]


def without_options(question: str, options: list[str]) -> str:
    """The question with these options blanked out, for the words around them."""
    if not options:
        return question
    alternatives = "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))
    return re.sub(rf"(?<![\w-])(?:{alternatives})(?![\w-])", " ", question)


def held_in(option: str, text: str) -> bool:
    """Does ``text`` hold the option as written (the boundaries ``chunk_pattern`` uses, in Python)?"""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def chunk_pattern(option: str) -> str:
    """A PostgreSQL regular expression for the option as written, bounded by anything but a word character or dash."""
    return rf"(?<![[:alnum:]_-]){re.escape(option)}(?![[:alnum:]_-])"


def definition_pattern(option: str) -> str:
    """The option at the start of a line, after a bullet or emphasis if any: where it is defined, not used."""
    return rf"(?n)^(?:[-*+][ \t]+)?[`*]*{re.escape(option)}(?![[:alnum:]_-])"


def find(session: Session, options: list[str], collection_id: int, chunk_count: int) -> list[OptionMatches]:
    """Per option, the chunks of the collection holding it, with how often; options in no chunk are left out."""
    found = []
    for option in options:
        words = " ".join(part for part in re.split(r"[-_]+", option) if part)
        narrow = session.execute(_HAS_WORDS, {"cfg": TS_CONFIG, "words": words}).scalar()
        if not narrow and chunk_count > SCAN_MAX_CHUNKS:
            continue
        statement = _MATCHES_BY_WORDS if narrow else _MATCHES_BY_SCAN
        rows = session.execute(
            statement,
            {"cfg": TS_CONFIG, "words": words, "literal": option, "pattern": chunk_pattern(option),
             "definition": definition_pattern(option),
             "collection_id": collection_id, "limit": MAX_MATCHES},
        ).all()
        if rows:
            found.append(OptionMatches(option, {row.id: (row.tf, row.token_count) for row in rows}))
    return found


# Whether the option's words leave anything after stopwords, i.e. whether the GIN index can narrow.
_HAS_WORDS = sa.text("SELECT numnode(plainto_tsquery(CAST(:cfg AS regconfig), :words)) > 0")

# Occurrences: in the text once; where a line starts with the option (an option list's entry, a
# bullet defining it: "-q, --quiet", "- `-s`: ...") thrice, as in the title or heading (the text leg
# counts title and heading words thrice too). An example command ("pytest -q") counts once.
_MATCHES = (
    "SELECT id, token_count, tf FROM ("
    " SELECT id, token_count,"
    " regexp_count(text, :pattern) + 2 * regexp_count(text, :definition)"
    " + 3 * regexp_count(coalesce(title, '') || ' ' || coalesce(heading, ''), :pattern) AS tf"
    " FROM document_chunks WHERE collection_id = :collection_id AND {narrow}"
    " AND (strpos(text, :literal) > 0 OR strpos(coalesce(title, '') || ' ' || coalesce(heading, ''), :literal) > 0)"
    ") m WHERE tf > 0 ORDER BY tf DESC, id LIMIT :limit"
)
_MATCHES_BY_WORDS = sa.text(_MATCHES.format(narrow="tsv @@ plainto_tsquery(CAST(:cfg AS regconfig), :words)"))
_MATCHES_BY_SCAN = sa.text(_MATCHES.format(narrow="true"))
