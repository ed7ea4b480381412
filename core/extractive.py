"""Answers without a language model: the most relevant sentences, quoted with their sources."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from core.types import Passage

EXTRACT_NOTE = "_This is an extract from the documents; no language model is configured to write a summary._"

_SENTENCE = re.compile(r"(?<=[.!?:])\s+|\n+")
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*[a-z0-9]|[a-z0-9]")
_STOPWORDS = frozenset(
    "a an the and or but if of to in on for with by at from as is are was were be been being do does did "
    "how what when where which who whom why can could should would will shall may might must i you we they "
    "it its this that these those my your our their me us them there here not no yes so than then too very "
    "about into over under up down out any all some each more most other such only own same just also get "
    "use using used want need have has had".split()
)


def terms(text: str) -> set[str]:
    return {_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOPWORDS}


def _stem(word: str) -> str:
    """A deliberately crude stemmer: enough to match 'limits' with 'limit' and 'rotating' with 'rotate'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True)
class _Scored:
    score: float
    source_n: int
    order: int
    sentence: str


def extractive_answer(
    question: str, passages: Sequence[Passage], *, max_sentences: int = 4, max_chars: int = 900
) -> tuple[str, list[int]]:
    """Quote the sentences that best match the question; return the text and the cited numbers."""
    wanted = terms(question)
    candidates = [
        (n, order, sentence, terms(sentence))
        for n, passage in enumerate(passages[:4], start=1)
        for order, sentence in enumerate(_sentences(passage.text))
    ]
    weight = _term_weights(wanted, [found for *_, found in candidates])
    scored: list[_Scored] = []
    for n, order, sentence, found in candidates:
        matched = found & wanted
        if not matched:
            continue
        # Rare question words say more than common ones; a question or an example command in
        # the docs rarely answers anything; higher-ranked passages are more likely right.
        score = sum(weight[t] for t in matched) / (1 + 0.15 * (n - 1))
        if "?" in sentence:
            score *= 0.3
        scored.append(_Scored(score, n, order, sentence))
    if not scored:
        scored = [_Scored(0, 1, i, s) for i, s in enumerate(_sentences(passages[0].text)[:2])]
    chosen: list[_Scored] = []
    used = 0
    ranked = sorted(scored, key=lambda s: (-s.score, s.source_n, s.order))
    for item in ranked:
        # Stop at the budget, or when sentences match much less than the best one does.
        if len(chosen) == max_sentences or (chosen and used + len(item.sentence) > max_chars):
            break
        if item.score < 0.5 * ranked[0].score:
            break
        chosen.append(item)
        used += len(item.sentence)
    chosen.sort(key=lambda s: (s.source_n, s.order))  # read in document order
    quotes = [f"> {item.sentence} [{item.source_n}]" for item in chosen]
    cited = sorted({item.source_n for item in chosen})
    return "\n".join(quotes) + "\n\n" + EXTRACT_NOTE, cited


def _term_weights(wanted: set[str], sentence_terms: list[set[str]]) -> dict[str, float]:
    total = len(sentence_terms) + 1
    return {
        term: math.log(1 + total / (1 + sum(term in found for found in sentence_terms))) for term in wanted
    }


def _sentences(text: str) -> list[str]:
    sentences = []
    for raw in _SENTENCE.split(text):
        sentence = " ".join(raw.split())
        if 20 <= len(sentence) <= 600:
            sentences.append(sentence)
    return sentences
