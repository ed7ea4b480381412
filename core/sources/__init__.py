"""Sources: what a collection is fed from (a folder, a URL or sitemap, a git repository), kept in sync.

* ``registry`` — add, list, show and remove sources (the ``sources`` table).
* ``schedule`` — intervals and cron lines, the next sync, backing off after failures.
* ``sync`` — one sync of one source: enumerate, ingest through core.ingest.pipeline, confirm removals.
* ``git`` — a repository's files at a commit, and what changed between two commits (the git CLI).
* ``web`` — conditional requests, robots.txt and a politeness delay for URL sources.
* ``jobs`` — syncs as durable jobs on the queue, and the periodic scheduler.

See docs/sources.md.
"""
