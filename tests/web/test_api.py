"""REST API: asking and following up, conversations, keys and scopes, and JSON for every error."""
from __future__ import annotations

import io

import pytest

from adapters.web.api import ApiLimits
from tests.web.conftest import COLLECTION


def test_an_answer_has_citations_and_the_same_session_id_makes_a_follow_up(web):
    first = web.ask("how do I rotate my API key?")
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert "Rotate" in body["answer"] and body["grounded"] is True
    assert body["collection"] == COLLECTION
    assert body["citations"][0]["source"] == "https://docs.example.com/keys.md#rotating-your-api-key"

    follow_up = web.ask("how long does the old one keep working?", session_id=body["session_id"])
    assert follow_up.status_code == 200
    assert "24 hours" in follow_up.get_json()["answer"]
    assert follow_up.get_json()["session_id"] == body["session_id"]

    turns = web.get(f"/api/v1/conversations/{body['session_id']}").get_json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1]["citations"][0]["source"].startswith("https://docs.example.com/keys.md")


def test_a_new_question_without_session_id_starts_a_new_conversation(web):
    one = web.ask("how do I rotate my API key?").get_json()["session_id"]
    two = web.ask("how do I ingest a folder?").get_json()["session_id"]
    assert one != two
    assert len(web.get(f"/api/v1/conversations/{two}").get_json()["turns"]) == 2


def test_null_session_id_and_collection_mean_left_out(web):
    one = web.ask("how do I rotate my API key?").get_json()["session_id"]
    response = web.post("/api/v1/ask", {"question": "how do I ingest a folder?", "session_id": None, "collection": None})
    assert response.status_code == 200
    assert response.get_json()["session_id"] != one


def test_conversations_are_private_to_their_key(web):
    session_id = web.ask("how do I rotate my API key?").get_json()["session_id"]
    other = web.keys.create([COLLECTION])
    mine = web.get(f"/api/v1/conversations/{session_id}")
    theirs = web.get(f"/api/v1/conversations/{session_id}", key=other.key)
    assert mine.status_code == 200
    assert theirs.status_code == 404 and theirs.get_json()["error"]["code"] == "not_found"


def test_missing_wrong_and_revoked_keys_get_401(web):
    missing = web.client.post("/api/v1/ask", json={"question": "hi"})
    wrong = web.post("/api/v1/ask", {"question": "hi"}, key="drk_not-a-real-key")
    not_bearer = web.client.post("/api/v1/ask", json={"question": "hi"}, headers={"Authorization": "Basic abc"})
    for response in (missing, wrong, not_bearer):
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    web.keys.revoke(web.key.info.id)
    revoked = web.ask("how do I rotate my API key?")
    assert revoked.status_code == 401
    assert revoked.get_json()["error"]["message"] == "Invalid or revoked API key."


def test_another_collection_is_404_exactly_like_one_that_does_not_exist(web):
    web.container.ingestor.ingest_items([], collection="secret")  # exists, but not for this key
    hidden = web.ask("how do I rotate my API key?", collection="secret")
    absent = web.ask("how do I rotate my API key?", collection="nothing-here")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.get_json()["error"]["message"] == "No collection named 'secret'."
    assert absent.get_json()["error"]["message"] == "No collection named 'nothing-here'."
    for path in ("/api/v1/collections/secret/documents", "/api/v1/collections/nothing-here/documents"):
        response = web.get(path)
        assert response.status_code == 404
        assert set(response.get_json()) == {"error"}


def test_a_follow_up_stays_in_its_conversations_collection(web):
    web.container.ingestor.ingest_items([], collection="other")
    both = web.keys.create([COLLECTION, "other"])
    first = web.post("/api/v1/ask", {"question": "how do I rotate my API key?"}, key=both.key)
    session_id = first.get_json()["session_id"]

    switched = web.post("/api/v1/ask", {"question": "and then?", "session_id": session_id, "collection": "other"},
                        key=both.key)
    assert switched.status_code == 400
    assert switched.get_json()["error"]["field"] == "session_id"

    follow_up = {"question": "how long does the old one keep working?", "session_id": session_id}
    implicit = web.post("/api/v1/ask", follow_up, key=both.key)
    assert implicit.status_code == 200
    assert implicit.get_json()["collection"] == COLLECTION


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "question"),
        ({"question": 42}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "hi\x00there"}, "question"),
        ({"question": "ok?", "session_id": "no spaces allowed"}, "session_id"),
        ({"question": "ok?", "collection": "../etc"}, "collection"),
        ({"question": "ok?", "colection": "docs"}, "colection"),
        ([1, 2], "body"),
    ],
)
def test_validation_errors_name_the_field(web, body, field):
    response = web.post("/api/v1/ask", body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")


def test_a_question_over_the_limit_names_the_field_and_the_limit(make_web):
    web = make_web(max_question_chars=50)
    response = web.ask("x" * 51)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "question: is longer than 50 characters"


def test_a_body_that_is_not_json_is_415(web):
    response = web.client.post("/api/v1/ask", data="question=hi", headers=web.auth(),
                               content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"


def test_unknown_paths_and_wrong_methods_are_json_errors(web):
    unknown = web.get("/api/v1/nope")
    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "not_found"

    wrong_method = web.get("/api/v1/ask")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong_method.headers["Allow"]

    put = web.client.put(f"/api/v1/collections/{COLLECTION}/documents", headers=web.auth())
    assert put.status_code == 405
    assert set(put.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST", "DELETE"}

    not_a_number = web.get("/api/v1/jobs/abc")
    assert not_a_number.status_code == 404 and not_a_number.is_json


def test_bodies_over_the_limit_are_413_json(make_web):

    web = make_web(limits=ApiLimits(max_json_bytes=1024, max_upload_bytes=2048))
    response = web.ask("x" * 5000)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"

    upload = web.client.post(
        f"/api/v1/collections/{COLLECTION}/documents",
        data={"file": (io.BytesIO(b"a" * 200_000), "big.txt")},
        headers=web.auth(),
        content_type="multipart/form-data",
    )
    assert upload.status_code == 413
    assert upload.get_json()["error"]["code"] == "request_entity_too_large"


def test_rate_limits_apply_per_key_with_retry_after(make_web):
    web = make_web(rate_user_per_min=2)
    assert web.ask("how do I rotate my API key?").status_code == 200
    assert web.ask("how do I ingest a folder?").status_code == 200
    limited = web.ask("what are the rate limits?")
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    other = web.keys.create([COLLECTION])
    assert web.post("/api/v1/ask", {"question": "what are the rate limits?"}, key=other.key).status_code == 200


def test_health_is_public_and_ready_checks_database_schema_and_queue(web):
    assert web.client.get("/api/v1/health").get_json() == {"status": "ok"}
    ready = web.client.get("/api/v1/ready")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "checks": {"database": "ok", "schema": "ok", "queue": "ok"}}


def test_ready_is_503_when_the_queue_is_unreachable(web, monkeypatch):
    def unreachable() -> bool:
        raise OSError("connection refused")

    monkeypatch.setattr(web.jobs, "check_connection", unreachable)
    response = web.client.get("/api/v1/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["error"]["code"] == "not_ready"
    assert body["checks"]["queue"] == "unreachable"


def test_every_response_carries_a_request_id(web):
    response = web.client.get("/api/v1/health", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    assert len(web.client.get("/api/v1/health").headers["X-Request-Id"]) == 16
