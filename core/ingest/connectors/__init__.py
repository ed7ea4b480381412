"""Documentation that lives behind an API or in an export file: Confluence spaces, Notion page
trees, and the zip files both export. Each connector yields :class:`core.ingest.sources.SourceItem`
values, so the ingestion pipeline treats a wiki page like any file.

A connector lists every page (identity, version, place in the hierarchy) on each sync and fetches a
page's body only when its version differs from the stored one: an unchanged space costs its listing
requests, nothing more. A page left out of the listing (deleted, moved out of the space) is removed
by the pipeline's prune.
"""
