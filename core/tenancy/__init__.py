"""Who may ask what: collections and which workspace answers from which, API keys, per-channel settings and rate limits."""
