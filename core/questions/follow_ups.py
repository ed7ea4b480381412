"""Does a question lean on the conversation before it, or stand on its own?

Only a question that depends on its history has the history folded into its search (or is
rewritten by the language model); any other question is searched exactly as in a fresh thread,
so a new topic in an old thread does not drag the previous topic's passages along.

A question the asker marks as a new topic ("unrelated: ...", "different question: ...", "btw")
stands alone. Otherwise it depends on its history when it:
- opens with a continuation ("and for async?", "what about Windows?", "also, ...");
- refers back with a pronoun or demonstrative that has no antecedent in the question itself
  ("is it undone after the test?", "how do I turn that off?", "this one", "those warnings");
- is too short to name a topic (at most one content word: "why?", "which one?").

Measured on the threads in bench/threads (python bench/thread_eval.py); a rule, not a parser, so
it errs on the side of standalone for questions that name their own topic.
"""
from __future__ import annotations

import re

# The asker says it is a new topic ("unrelated: ...", "btw, ..."): whatever follows stands alone.
_NEW_TOPIC = re.compile(
    r"^(unrelated|separately|btw|by the way|on another note|(a |one )?(different|new|another|other|separate) "
    r"(question|thing|topic|subject)|switching (topics|subjects)|changing (the )?(topic|subject))\b"
)
# Words that open an elliptical follow-up: the question continues the previous one.
_OPENERS = re.compile(
    r"^(and|or|but|also|plus|so|then|same|ok|okay|instead|what about|how about|what if|and if|what else)\b"
)
# "... and what about Discord?": the elliptical part need not open the question.
_ELLIPSIS = re.compile(r"\b(?:what|how) about\b")
# Pronouns that always point outside the question unless it names an antecedent first.
_PRONOUNS = {"it", "its", "itself", "they", "them", "their", "theirs", "themselves", "these", "those"}
# Words that say "as before, but...": only meaningful with a history (some only at the end:
# "too many files" and "either a or b" stand alone, "and for Windows too?" does not).
_CONTINUATIONS = {"also", "else", "former", "latter"}
_FINAL_CONTINUATIONS = {"too", "either", "instead", "otherwise"}
# "the same for X", "do the same": but "run the same test twice" names its own topic.
_AFTER_SAME = {"", "for", "thing", "here", "there", "again"}
# "is it possible to ...", "it is recommended ...": 'it' points at nothing.
_EXPLETIVE_IT = re.compile(
    r"\b(?:(?:is|was)(?: not)? it|it (?:is|was)(?: not)?)\s+(?:possible|necessary|safe|recommended|better|best|ok|okay|"
    r"advisable|wise|required|a good idea)\b"
)
# "my application ... its configuration": the question gives the pronoun its own antecedent.
_OWN_ANTECEDENT = {"my", "our", "your", "a", "an"}
# After these, "that" is a pronoun ("with that", "does that work?"), not a conjunction
# ("make sure that ...") or a relative ("an option that takes a list").
_BEFORE_PRONOUN_THAT = {
    "with", "for", "of", "about", "to", "from", "in", "on", "like", "into", "without",
    "is", "was", "does", "do", "did", "can", "will", "would", "should", "could",
}
# "that" after these opens a clause ("make sure that ...", "so that ..."): not a reference.
_BEFORE_CLAUSE_THAT = {"so", "such", "sure", "check", "assert", "ensure", "verify", "say", "says", "mean", "means", "know"}
# A clause or a relative after "that" ("test that a function raises", "an option that takes a
# list", "output that is coloured"): not a reference.
_CLAUSE_STARTS = {
    "a", "an", "the", "my", "our", "your", "his", "her", "i", "we", "you", "it", "they", "there",
    "all", "each", "every", "no", "some", "this", "these", "those", "its", "their",
    "is", "are", "was", "were", "be", "can", "could", "will", "would", "should", "may", "might", "must",
    "has", "have", "had", "does", "do", "did", "doesn't", "don't", "isn't", "won't", "can't", "not", "only",
}
_STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from into about as than like without
    is are was were be been being am do does did done have has had can could will would should shall
    may might must i me my we our you your he she his her it its they them their this that these those
    there here what which who whom whose when where why how whether not no yes any some all each every
    one ones also too just only very really please thanks thank ok okay way get make use want need
    tell show explain know""".split()
)
# "what's", "that's", "they're": the word and a verb, so "that's broken" refers back like "that is".
_CONTRACTION = re.compile(r"'(?:s|re|m|ll|ve|d)\b")
_TOKEN = re.compile(r"[\w][\w'.+-]*|--?[\w][\w-]*")


def depends_on_history(question: str) -> bool:
    return follow_up_signal(question) is not None


def follow_up_signal(question: str) -> str | None:
    """Why ``question`` needs its history ("opener", "reference", "short"), or None if it stands alone."""
    text = _CONTRACTION.sub(" is", " ".join(question.lower().replace("\u2019", "'").split()).replace("n't", " not"))
    words = [w.rstrip(".'") for w in _TOKEN.findall(text)]
    if not words:
        return "short"
    if _NEW_TOPIC.match(text):
        return None
    if _OPENERS.match(text) or _ELLIPSIS.search(text):
        return "opener"
    if _refers_back(words, text):
        return "reference"
    if sum(1 for w in words if w not in _STOPWORDS) <= 1:
        return "short"
    return None


def _refers_back(words: list[str], text: str) -> bool:
    expletive = bool(_EXPLETIVE_IT.search(text))
    for i, word in enumerate(words):
        before = words[i - 1] if i else ""
        after = words[i + 1] if i + 1 < len(words) else ""
        if word in _PRONOUNS:
            if word == "it" and expletive:
                continue
            if not any(w in _OWN_ANTECEDENT for w in words[:i]):
                return True
        elif word in _CONTINUATIONS or (word in _FINAL_CONTINUATIONS and not after):
            return True
        elif word == "same" and after in _AFTER_SAME:
            return True
        elif word == "this" or (word == "that" and _that_points_back(i, before, after)):
            return True
        elif word == "one" and before in {"this", "that", "which", "other", "same", "first", "last", "new", "old"}:
            return True
        elif word == "there" and not after:
            return True
    return False


def _that_points_back(i: int, before: str, after: str) -> bool:
    """"how do I test that?", "with that", "put that hook": a reference back. "tests that fail",
    "code that raises", "so that markers": a clause of the question's own."""
    if not after or i == 0 or before in _BEFORE_PRONOUN_THAT:
        return True
    if before in _BEFORE_CLAUSE_THAT or after in _CLAUSE_STARTS:
        return False
    # "that" takes a singular noun ("that hook"); a word in -s or -ed after it is a verb
    # ("that raises", "that failed"), and a plural before it has a relative ("tests that fail").
    return not (after.endswith(("s", "ed")) and not after.endswith("ss")) and not before.endswith("s")
