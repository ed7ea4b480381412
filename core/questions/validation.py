"""What counts as a question: text, no control characters, not only mentions, not too long."""
from __future__ import annotations

import re
import unicodedata

from core.errors import InvalidQuestion

# Chat mention syntax (Slack <@U123>, <!here>; Discord <@123>, <@!123>, <@&role>) is not question text.
_MENTION = re.compile(r"<[@!#][!&]?[\w|.-]*>")


def clean_question(question: object, *, max_chars: int) -> str:
    """The question as stored and searched, or InvalidQuestion saying what to change."""
    if not isinstance(question, str):
        raise InvalidQuestion("A question must be text.")
    text = unicodedata.normalize("NFC", question)
    only_mentions = bool(_MENTION.search(text)) and not _MENTION.sub("", text).strip()
    text = _MENTION.sub("", text)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t\r" for ch in text):
        raise InvalidQuestion("The question contains control characters; please send plain text.")
    text = " ".join(text.split())
    if only_mentions:
        raise InvalidQuestion("You mentioned me without a question. Ask me something, e.g. “how do I ingest a folder?”")
    if not text:
        raise InvalidQuestion("The question is empty. Ask me something, e.g. “how do I ingest a folder?”")
    if len(text) > max_chars:
        raise InvalidQuestion(
            f"The question is {len(text)} characters long; the limit is {max_chars}. "
            "Please shorten it to the essential part."
        )
    return text
