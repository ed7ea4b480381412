"""Keeping sources in sync: conditional re-syncs of a site, robots.txt, the removal rule, one sync per
source at a time, scheduled syncs as durable jobs, and backing off after failures."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
import sqlalchemy as sa

from core.sources.jobs import defer_sync, queue_due_syncs, register_source_tasks
from core.sources.registry import SourceSpec
from core.storage.models import Document, Source
from core.storage.queue import BackgroundWorker, build_job_app
from tests.builders import CountingEmbedder
from tests.fakes.site_server import FakeSite


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as site:
        for n in range(20):
            site.pages[f"/page-{n}.html"] = f"<html><body><h1>Page {n}</h1><p>Topic number {n} explained.</p></body></html>"
        site.robots = "User-agent: *\nDisallow: /private/\n"
        site.pages["/private/secret.html"] = "<h1>Private</h1><p>Not for robots.</p>"
        yield site


@pytest.fixture
def synced(make_container):
    container = make_container(sync_politeness_s=0, sync_confirm_missing=2)
    container.embedder = CountingEmbedder(container.embedder)
    return container


def stored(container) -> set[str]:
    with container.database.sessions() as session:
        return set(session.scalars(sa.select(Document.source_uri)))


def test_an_unchanged_sitemap_resyncs_with_conditional_requests_only_and_embeds_nothing(synced, site):
    sitemap = site.publish_sitemap()
    source = synced.sources.add(SourceSpec(kind="url", target=sitemap, collection="site"))
    first = synced.syncer.sync(source.id)
    assert first.status == "ok", first.error
    assert first.counts["added"] == 20 and first.counts["robots_disallowed"] == 1
    assert "/private/secret.html" not in {r.path for r in site.requests}
    embedded = synced.embedder.texts

    site.reset_requests()
    again = synced.syncer.sync(source.id)

    assert again.status == "ok", again.error
    assert site.requests and all(r.conditional and r.status == 304 for r in site.requests)
    assert (again.counts["unchanged"], again.counts["read"], again.counts["not_modified"]) == (20, 0, 22)
    assert synced.embedder.texts == embedded  # nothing re-embedded


def test_a_changed_page_is_read_again_and_a_page_left_out_is_removed_after_two_syncs(synced, site):
    source = synced.sources.add(SourceSpec(kind="url", target=site.publish_sitemap(), collection="site"))
    assert synced.syncer.sync(source.id).status == "ok"

    site.pages["/page-3.html"] = "<h1>Page 3</h1><p>Rewritten.</p>"
    del site.pages["/page-7.html"]
    site.publish_sitemap()
    first = synced.syncer.sync(source.id)
    assert (first.counts["updated"], first.counts["removed"], first.counts["pending_removal"]) == (1, 0, 1)
    assert f"{site.base_url}/page-7.html" in stored(synced)

    second = synced.syncer.sync(source.id)
    assert (second.counts["removed"], second.counts["pending_removal"]) == (1, 0)
    assert f"{site.base_url}/page-7.html" not in stored(synced)


def test_a_site_that_is_down_fails_the_sync_removes_nothing_and_backs_off(synced, site):
    source = synced.sources.add(SourceSpec(kind="url", target=site.publish_sitemap(), collection="site", schedule="1h"))
    assert synced.syncer.sync(source.id).status == "ok"
    site.down = True

    waits = []
    for _ in range(3):
        started = datetime.now(timezone.utc)
        result = synced.syncer.sync(source.id)
        assert result.status == "failed" and "503" in result.error
        waits.append((synced.sources.get(source.id).next_sync_at - started).total_seconds())

    assert len(stored(synced)) == 20
    assert [round(w / 60) for w in waits] == [1, 2, 4]  # minutes: doubling after each failure
    site.down = False
    assert synced.syncer.sync(source.id).status == "ok"
    view = synced.sources.get(source.id)
    assert view.consecutive_failures == 0 and 55 * 60 < (view.next_sync_at - datetime.now(timezone.utc)).total_seconds()


def test_one_sync_per_source_at_a_time(synced, tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nAlpha.\n")
    source = synced.sources.add(SourceSpec(kind="folder", target=str(tmp_path), collection="docs"))
    with synced.database.engine.connect() as other:  # another process holding this source's sync
        other.execute(sa.text("SELECT pg_advisory_lock(:c, :s)"), {"c": 0x5C5, "s": source.id})
        assert synced.syncer.sync(source.id).status == "busy"
        other.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        other.commit()
    assert synced.syncer.sync(source.id).status == "ok"


@pytest.fixture
def jobs(database):
    app = build_job_app(database.conninfo)
    app.open()
    yield app
    app.close()


def test_scheduled_sources_are_queued_when_due_once_each_and_run_by_a_worker(synced, jobs, tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nAlpha.\n")
    due = synced.sources.add(SourceSpec(kind="folder", target=str(tmp_path), collection="docs", schedule="30m"))
    synced.sources.add(SourceSpec(kind="folder", target=str(tmp_path), collection="other", schedule="1d"))
    later = datetime.now(timezone.utc) + timedelta(minutes=31)

    assert queue_due_syncs(synced.database.sessions, jobs, now=later) == 1
    assert queue_due_syncs(synced.database.sessions, jobs, now=later) == 0  # already waiting: not twice
    assert defer_sync(jobs, due.id) is False

    app = build_job_app(synced.database.conninfo)
    register_source_tasks(app, synced.syncer, jobs)
    worker = BackgroundWorker(app, concurrency=2).start()
    try:
        deadline = time.monotonic() + 30
        while synced.sources.get(due.id).status != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.stop()
    view = synced.sources.get(due.id)
    assert view.status == "ok" and view.documents == 1
    with synced.database.sessions() as session:
        assert session.scalar(sa.select(Source.next_sync_at).where(Source.id == due.id)) > datetime.now(timezone.utc)
