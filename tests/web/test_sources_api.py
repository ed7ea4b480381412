"""/api/v1/sources and the /sources page: keys see their collections' sources only, and never a secret."""
import sqlalchemy as sa

from core.sources.registry import SourceSpec
from tests.web.conftest import COLLECTION


def test_a_key_adds_lists_syncs_and_removes_a_source_of_its_collection(web):
    created = web.client.post("/api/v1/sources", headers=web.auth(), json={
        "kind": "git", "target": "https://github.com/example/handbook.git", "collection": COLLECTION,
        "branch": "main", "include": ["docs/**"], "schedule": "6h",
    })
    assert created.status_code == 201, created.get_json()
    source = created.get_json()["source"]
    assert created.get_json()["sync_queued"] is True
    assert (source["kind"], source["schedule"], source["options"]) == (
        "git", "6h", {"branch": "main", "include": ["docs/**"]})

    listed = web.client.get("/api/v1/sources", headers=web.auth()).get_json()["sources"]
    assert [s["id"] for s in listed] == [source["id"]]
    again = web.client.post(f"/api/v1/sources/{source['id']}/sync", headers=web.auth())
    assert again.status_code == 202 and again.get_json()["sync_queued"] is False  # one is already waiting

    assert web.client.delete(f"/api/v1/sources/{source['id']}", headers=web.auth()).status_code == 200
    assert web.client.get(f"/api/v1/sources/{source['id']}", headers=web.auth()).status_code == 404


def test_sources_of_other_collections_look_missing_and_folders_are_refused(web, tmp_path):
    other = web.container.sources.add(SourceSpec(kind="folder", target=str(tmp_path), collection="private"))

    assert web.client.get(f"/api/v1/sources/{other.id}", headers=web.auth()).status_code == 404
    assert web.client.delete(f"/api/v1/sources/{other.id}", headers=web.auth()).status_code == 404
    assert web.client.get("/api/v1/sources", headers=web.auth()).get_json()["sources"] == []
    folder = web.client.post("/api/v1/sources", headers=web.auth(),
                             json={"kind": "folder", "target": str(tmp_path), "collection": COLLECTION})
    assert folder.status_code == 400 and folder.get_json()["error"]["field"] == "kind"


def test_the_sources_page_shows_state_and_errors_with_the_playground_headers(web, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    source = web.container.sources.add(SourceSpec(kind="folder", target=str(gone), collection=COLLECTION))
    gone.rmdir()
    assert web.container.syncer.sync(source.id).status == "failed"

    page = web.client.get("/sources")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers and "script" not in html
    assert "gone" in html and "failed" in html and "no such file or folder" in html
    assert str(tmp_path) not in html.split("Last error")[0]  # the folder by its name, not the server's path
    with web.container.database.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sources")).scalar() == 1
