"""Finding the passages that answer a question: embeddings, BM25 full text, the vector leg, and their fusion."""
