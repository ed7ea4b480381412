"""Writing an answer from passages: an OpenAI-compatible LLM, or a verbatim extract, and the evidence that decides "not covered"."""
