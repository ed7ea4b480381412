"""Documents through the API: upload or URL -> background job -> status -> listed, answerable, deletable."""
from __future__ import annotations

import http.server
import io
import threading
from typing import Iterator

import pytest
import sqlalchemy as sa

from core.ingest.jobs import register_ingest_task, requeue_orphans
from core.storage.queue import BackgroundWorker, build_job_app
from core.storage.models_web import IngestJob
from tests.web.conftest import COLLECTION

DOCS_PATH = f"/api/v1/collections/{COLLECTION}/documents"
WEBHOOKS = b"""<html><head><title>Webhooks</title></head><body>
<h1>Webhooks</h1><h2>Signing webhooks</h2>
<p>Every webhook request carries an X-Signature header computed with HMAC-SHA256 over the raw body.</p>
</body></html>"""


def upload(web, name: str, data: bytes, *, collection: str = COLLECTION, **fields: str):
    return web.client.post(
        f"/api/v1/collections/{collection}/documents",
        data={"file": (io.BytesIO(data), name), **fields},
        headers=web.auth(),
        content_type="multipart/form-data",
    )


@pytest.fixture
def site() -> Iterator[str]:
    """A documentation site on 127.0.0.1 (tests have no internet)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != "/webhooks.html":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(WEBHOOKS)))
            self.end_headers()
            self.wfile.write(WEBHOOKS)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def worker(web) -> Iterator[BackgroundWorker]:
    """A real job worker (as `docrag worker` runs) with the ingestion task registered."""
    app = build_job_app(web.container.database.conninfo)
    register_ingest_task(app, web.runner)
    running = BackgroundWorker(app, concurrency=1).start()
    yield running
    running.stop()


def test_an_upload_is_ingested_by_a_job_then_listed_answerable_and_deletable(web):
    text = b"# Backups\n\n## Restoring a backup\n\nTo restore a backup, run docrag restore with the archive path.\n"
    response = upload(web, "backups.md", text, link="https://docs.example.com/backups")
    assert response.status_code == 202
    job = response.get_json()["job"]
    assert job["status"] == "queued" and job["kind"] == "upload" and job["source"] == "backups.md"
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"

    web.run_queued_ingest_jobs()
    done = web.get(f"/api/v1/jobs/{job['id']}").get_json()["job"]
    assert done["status"] == "succeeded", done
    assert done["result"]["added"] == 1 and done["progress"] == {"done": 1, "total": 1}

    listed = web.get(DOCS_PATH).get_json()
    assert listed["total"] == 4
    backups = next(d for d in listed["documents"] if d["source"] == "upload:backups.md")
    assert backups["title"] == "Backups" and backups["chunks"] >= 1
    assert backups["link"] == "https://docs.example.com/backups"

    answer = web.ask("how do I restore a backup?").get_json()
    assert "docrag restore" in answer["answer"]
    assert answer["citations"][0]["source"].startswith("https://docs.example.com/backups")

    deleted = web.client.delete(f"{DOCS_PATH}?document={backups['id']}", headers=web.auth())
    assert deleted.status_code == 200 and deleted.get_json()["deleted"]["source"] == "upload:backups.md"
    assert web.get(DOCS_PATH).get_json()["total"] == 3
    again = web.client.delete(f"{DOCS_PATH}?document={backups['id']}", headers=web.auth())
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "not_found"


def test_uploading_the_same_name_again_replaces_the_document(web):
    upload(web, "notes.txt", b"The staging server is called kestrel.")
    web.run_queued_ingest_jobs()
    upload(web, "notes.txt", b"The staging server is called osprey.")
    web.run_queued_ingest_jobs()
    documents = [d for d in web.get(DOCS_PATH).get_json()["documents"] if d["source"] == "upload:notes.txt"]
    assert len(documents) == 1
    assert "osprey" in web.ask("what is the staging server called?").get_json()["answer"]


def test_a_document_can_be_deleted_by_source(web):
    source = next(d["source"] for d in web.get(DOCS_PATH).get_json()["documents"] if d["title"] == "Rate limits")
    response = web.client.delete(DOCS_PATH, query_string={"document": source}, headers=web.auth())
    assert response.status_code == 200
    assert all(d["source"] != source for d in web.get(DOCS_PATH).get_json()["documents"])


def test_a_url_is_ingested_by_a_background_worker(web, site, worker):
    response = web.post(DOCS_PATH, {"url": f"{site}/webhooks.html"})
    assert response.status_code == 202
    job = web.wait_for_job(response.get_json()["job"]["id"])
    assert job["status"] == "succeeded", job
    assert job["kind"] == "url" and job["result"]["added"] == 1
    answer = web.ask("which header carries the webhook signature?").get_json()
    assert "X-Signature" in answer["answer"]
    assert answer["citations"][0]["source"].startswith(f"{site}/webhooks.html")


def run_url_job(web, url: str) -> dict:
    """Submit a URL, run the queued jobs here as a worker would, and return the finished job."""
    job_id = web.post(DOCS_PATH, {"url": url}).get_json()["job"]["id"]
    web.run_queued_ingest_jobs()
    return web.get(f"/api/v1/jobs/{job_id}").get_json()["job"]


def backdate(web, job_id: int) -> None:
    """Make a job's row look five minutes old, past the requeue delay."""
    with web.container.database.sessions.begin() as session:
        session.execute(sa.update(IngestJob).where(IngestJob.id == job_id)
                        .values(created_at=sa.func.now() - sa.text("interval '5 minutes'")))


def test_a_url_that_fails_makes_a_failed_job_with_the_reason(web, site):
    job = run_url_job(web, f"{site}/missing.html")
    assert job["status"] == "failed"
    assert "404" in job["error"]


def test_private_addresses_are_refused_unless_allowed(make_web, site):
    job = run_url_job(make_web(allow_private_urls=False), f"{site}/webhooks.html")
    assert job["status"] == "failed"
    assert "private or local address" in job["error"]


def test_a_job_whose_queue_entry_was_lost_is_queued_again_and_runs(web, worker):
    sessions = web.container.database.sessions
    with sessions.begin() as session:  # the web process saved the row, then died before deferring
        row = IngestJob(collection=COLLECTION, kind="upload", source="lost.txt", payload=b"The lost job ran.")
        session.add(row)
        session.flush()
        job_id = row.id
    assert requeue_orphans(sessions, web.jobs) == 0  # too recent: its job may still be on its way
    backdate(web, job_id)

    assert requeue_orphans(sessions, web.jobs) == 1
    assert web.wait_for_job(job_id)["status"] == "succeeded"
    assert requeue_orphans(sessions, web.jobs) == 0  # finished: nothing more to do


def test_a_waiting_job_is_not_queued_twice(web):
    job_id = upload(web, "waiting.txt", b"Waiting in the queue.").get_json()["job"]["id"]
    backdate(web, job_id)  # no worker: it is still waiting in the queue
    assert requeue_orphans(web.container.database.sessions, web.jobs) == 0


def test_a_job_is_run_once_even_if_its_task_runs_twice(web):
    job_id = upload(web, "once.txt", b"Only once.").get_json()["job"]["id"]
    web.runner.run(job_id)
    web.runner.run(job_id)  # a duplicate delivery: nothing happens
    job = web.get(f"/api/v1/jobs/{job_id}").get_json()["job"]
    assert job["status"] == "succeeded" and job["result"]["added"] == 1


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field"),
    [
        ({"data": {"file": (io.BytesIO(b"x"), "tool.exe")}, "content_type": "multipart/form-data"}, 400, "file"),
        ({"data": {"file": (io.BytesIO(b""), "empty.md")}, "content_type": "multipart/form-data"}, 400, "file"),
        ({"data": {"other": "x"}, "content_type": "multipart/form-data"}, 400, "file"),
        ({"data": {"file": (io.BytesIO(b"x"), "a.md"), "link": "javascript:alert(1)"},
          "content_type": "multipart/form-data"}, 400, "link"),
        ({"json": {"url": "file:///etc/passwd"}}, 400, "url"),
        ({"json": {"url": "/etc/passwd"}}, 400, "url"),
        ({"json": {}}, 400, "url"),
        ({"data": "hello", "content_type": "text/plain"}, 415, None),
    ],
)
def test_bad_document_requests_name_the_field(web, request_kwargs, status, field):
    response = web.client.post(DOCS_PATH, headers=web.auth(), **request_kwargs)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    if field:
        assert error["field"] == field
    assert web.get(DOCS_PATH).get_json()["total"] == 3  # nothing was queued or ingested


def test_listing_pages_and_validates_its_parameters(web):
    page = web.get(DOCS_PATH, query_string={"limit": 2, "offset": 1}).get_json()
    assert page["total"] == 3 and len(page["documents"]) == 2
    bad = web.get(DOCS_PATH, query_string={"limit": 0})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "limit"


def test_deleting_names_the_document_parameter(web):
    missing = web.client.delete(DOCS_PATH, headers=web.auth())
    assert missing.status_code == 400
    assert missing.get_json()["error"]["field"] == "document"
    unknown = web.client.delete(DOCS_PATH, query_string={"document": "https://nowhere.example/x"}, headers=web.auth())
    assert unknown.status_code == 404


def test_jobs_of_collections_the_key_cannot_see_are_404(web):
    job_id = upload(web, "a.txt", b"Alpha.").get_json()["job"]["id"]
    other = web.keys.create(["elsewhere"])
    assert web.get(f"/api/v1/jobs/{job_id}", key=other.key).status_code == 404
    assert web.get("/api/v1/jobs/999999").status_code == 404
    assert web.get(f"/api/v1/jobs/{2**40}").status_code == 404


def test_a_key_can_fill_a_collection_that_does_not_exist_yet(web):
    fresh = web.keys.create(["handbook"])
    assert web.get("/api/v1/collections/handbook/documents", key=fresh.key).status_code == 404
    response = web.client.post(
        "/api/v1/collections/handbook/documents",
        data={"file": (io.BytesIO(b"Holidays are booked in the HR portal."), "holidays.txt")},
        headers=web.auth(fresh.key),
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    web.run_queued_ingest_jobs()
    assert web.get("/api/v1/collections/handbook/documents", key=fresh.key).get_json()["total"] == 1
