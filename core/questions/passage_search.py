"""Passages for a query, as `docrag search` lists them, without the answering stack.

The query is cleaned as a question is (validation.py), the collection must exist and match the
embedder, then hybrid search ranks its passages. The engine's own ``search`` is this one; a process
that only searches builds it alone (bots/wiring.py ``Container.searcher``) and so never loads the
language-model client, the extract writer, rate limits or the question store.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.questions.validation import clean_question
from core.search.retrieval import Retriever
from core.tenancy.collections import check_embedder, get_collection
from core.types import Passage


@dataclass(frozen=True)
class PassageSearch:
    sessions: sessionmaker[Session]
    retriever: Retriever
    max_question_chars: int = 2000
    max_per_document: int = 2

    def search(self, query: str, *, collection: str, limit: int = 10) -> list[Passage]:
        text = clean_question(query, max_chars=self.max_question_chars)
        embedder = self.retriever.embedder
        with self.sessions() as session:
            coll = get_collection(session, collection)
            check_embedder(coll, embedder.name, embedder.dimension)
            collection_id = coll.id
        return self.retriever.search(
            text, collection_id=collection_id, limit=limit, max_per_document=self.max_per_document
        ).passages
