"""One exception family. Adapters turn each kind into a reply that tells the user what happened."""
from __future__ import annotations

import secrets


class DocRagError(Exception):
    """Base of every error DocRag raises on purpose. ``str(err)`` is safe to show a user."""


class InvalidInput(DocRagError):
    """Input that cannot be used as given; the message says what to change."""


class InvalidQuestion(InvalidInput):
    """The question cannot be answered as asked (empty, too long, control characters...)."""


class RateLimited(DocRagError):
    def __init__(self, message: str, *, retry_after_s: float, scope: str) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.scope = scope


class UpstreamUnavailable(DocRagError):
    """An LLM or embedding API failed after retries. Carries a short id that is also logged."""

    def __init__(self, service: str, detail: str = "", *, reference: str | None = None) -> None:
        self.service = service
        self.detail = detail
        self.reference = reference or new_reference()
        super().__init__(f"{service} is unavailable right now (reference {self.reference})")


class ConfigurationError(DocRagError):
    """A setting is missing or wrong; the message names the setting and the fix."""


class SchemaOutOfDate(DocRagError):
    """The database schema is behind the code."""


class EmbedderMismatch(DocRagError):
    """A collection was indexed with another embedder than the one configured."""


class DocumentError(DocRagError):
    """One document could not be read or parsed; ingestion reports it and goes on."""


class NothingToIndex(DocumentError):
    """A document holds no text to search (empty, or only directives such as includes): skipped, not failed."""


class NotFound(DocRagError):
    pass


def new_reference() -> str:
    """A short id a user can quote and an operator can grep the logs for."""
    return secrets.token_hex(4)
