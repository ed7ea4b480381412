"""The REST API blueprint, ``/api/v1``: ask, conversations, documents, jobs, health and readiness.

Build it with :func:`api_blueprint` and an :class:`ApiServices` holding its collaborators. Every
request except health, readiness and the OpenAPI document needs an API key (see ``auth``); every
error is ``{"error": {"code", "message"}}`` (see ``errors``).
"""
from __future__ import annotations

import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable

import procrastinate
import sqlalchemy as sa
from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from adapters.web import sse
from adapters.web.auth import (
    collection_not_found,
    current_key,
    key_checker,
    visible_collection,
)
from adapters.web.errors import FieldError, add_json_errors, error_response
from adapters.web.openapi import (
    MAX_URL_CHARS,
    NAME_PATTERN,
    SESSION_PATTERN,
    openapi_spec,
)
from adapters.web.readiness import BoundedReadiness
from adapters.web.sources_api import add_source_routes
from adapters.web.validation import (
    MAX_DB_INT,
    int_arg,
    json_object,
    matching,
    plain_text,
    text,
    web_url,
)
from core.questions.engine import Engine
from core.questions.waiting import Accepted, IdempotencyKeyReused, Outcome, State, WaitingDoor
from core.errors import InvalidQuestion
from core.errors import NotFound as Missing
from core.ingest import catalog
from core.ingest.jobs import IngestJobs, JobView
from core.ingest.loaders import SUPPORTED_SUFFIXES
from core.questions import transcripts
from core.sources.registry import Sources
from core.storage import schema
from core.storage.db import Database, open_probe_engine
from core.storage.faults import DatabaseUnavailable
from core.tenancy.apikeys import ApiKeys, KeyInfo
from core.types import Answer, SessionKey

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
BLUEPRINT = "api_v1"
PLATFORM = "api"
_NAME = re.compile(NAME_PATTERN)
_SESSION = re.compile(SESSION_PATTERN)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_IDEMPOTENCY = _REQUEST_ID  # the same characters as a request id: a UUID, a ULID, a counter
_FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields next to the file


@dataclass(frozen=True)
class ApiLimits:
    max_json_bytes: int = 64 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    max_page: int = 500


@dataclass
class ApiServices:
    engine: Engine
    database: Database
    keys: ApiKeys
    ingest: IngestJobs
    jobs: procrastinate.App  # opened for deferring; readiness asks it whether the queue is reachable
    limits: ApiLimits = field(default_factory=ApiLimits)
    sources: Sources | None = None  # /sources (adapters/web/sources_api.py); None: they answer 404
    door: WaitingDoor | None = None  # the questions' lifecycle; None: one over ``engine`` and ``jobs``


def api_blueprint(services: ApiServices) -> Blueprint:
    blueprint = Blueprint(BLUEPRINT, __name__, url_prefix=API_PREFIX)
    add_json_errors(blueprint)
    blueprint.register_error_handler(KeyReused, _key_reused)
    public = {f"{BLUEPRINT}.{name}" for name in ("health", "ready", "openapi", "_unrouted", "_unrouted_root")}
    blueprint.before_request(_start_request(services.limits))
    blueprint.before_request(key_checker(services.keys, public_endpoints=public))
    blueprint.after_request(_tag_response)
    _ask_routes(blueprint, services)
    _document_routes(blueprint, services)
    _status_routes(blueprint, services)
    add_source_routes(blueprint, services.sources, services.jobs)
    return blueprint


# -- asking ------------------------------------------------------------------------------------------
def _ask_routes(blueprint: Blueprint, services: ApiServices) -> None:
    """Every question goes through the waiting door's lifecycle (core/questions/waiting.py): stored
    with its idempotency key before answering, its durable job held while this process answers."""
    engine, sessions = services.engine, services.database.sessions
    door = services.door or WaitingDoor(engine, services.jobs)

    @blueprint.post("/ask")
    def ask() -> Response:
        body = json_object({"question", "collection", "session_id", "stream", "request_id"})
        question = text(body, "question", required=True, max_chars=engine.options.max_question_chars)
        wanted = matching("collection", text(body, "collection", max_chars=100), _NAME, "is not a collection name")
        session_id = matching("session_id", text(body, "session_id", max_chars=64), _SESSION,
                              "must be 1-64 letters, digits, '-' or '_'") or uuid.uuid4().hex
        stream, request_key = _wants_stream(body), _request_key(body)
        key = session_key(current_key(), session_id)
        collection = _collection_for_ask(sessions, key, wanted)
        accepted = _accept(door, key, question or "", collection, request_key)
        g.question_id = accepted.question_id
        if not accepted.new:
            return _replay(door, accepted, stream=stream)
        return _answer(door, accepted, key, collection, stream=stream)

    @blueprint.get("/questions/<int:question_id>")
    def question(question_id: int) -> Response:
        missing = Missing(f"No question with id {question_id}.")
        if question_id > MAX_DB_INT:
            raise missing
        outcome = door.outcome(question_id)
        if outcome.key.platform != PLATFORM or outcome.key.workspace != str(current_key().id) \
                or not current_key().can_see(outcome.collection):
            raise missing
        return jsonify(question=question_json(outcome))

    @blueprint.get("/conversations/<session_id>")
    def conversation(session_id: str) -> Response:
        missing = Missing(f"No conversation with id {session_id!r}.")
        if not _SESSION.fullmatch(session_id):
            raise missing
        found = transcripts.transcript(sessions, session_key(current_key(), session_id))
        if found is None or not current_key().can_see(found.collection):
            raise missing
        return jsonify(session_id=session_id, collection=found.collection, turns=found.turns)


def session_key(key: KeyInfo, session_id: str) -> SessionKey:
    """One conversation per API key and session id; the key is the user for rate limits."""
    return SessionKey(platform=PLATFORM, workspace=str(key.id), channel="api", thread=session_id, user=str(key.id))


def _collection_for_ask(sessions: sessionmaker[Session], key: SessionKey, wanted: str | None) -> str:
    """The requested collection, else the conversation's, else the key's first; always one the key sees."""
    if wanted:
        visible_collection(wanted)
    existing = transcripts.conversation_collection(sessions, key)
    if wanted and existing and wanted != existing:
        raise FieldError("session_id", f"belongs to a conversation about collection {existing!r}, not {wanted!r}")
    return visible_collection(wanted or existing or current_key().collections[0])


def _request_key(body: dict[str, Any]) -> str | None:
    """The client's idempotency key (``Idempotency-Key`` header or ``request_id``), scoped to its API key."""
    header = request.headers.get("Idempotency-Key")
    field_value = body.get("request_id")
    if field_value is not None and not (isinstance(field_value, str) and _IDEMPOTENCY.fullmatch(field_value)):
        raise FieldError("request_id", "must be 1-64 letters, digits, '.', '-' or '_'")
    if header is not None and not _IDEMPOTENCY.fullmatch(header):
        raise FieldError("Idempotency-Key", "must be 1-64 letters, digits, '.', '-' or '_'")
    # Both sent: the header wins (a proxy or client library sets it; the body's is the caller's own).
    chosen = header if header is not None else field_value
    return f"{PLATFORM}:{current_key().id}:{chosen}" if chosen else None


def _accept(door: WaitingDoor, key: SessionKey, question: str, collection: str, request_key: str | None) -> Accepted:
    try:
        return door.accept(key, question, collection=collection, request=request_key)
    except InvalidQuestion as exc:
        raise FieldError("question", str(exc)) from None
    except Missing:  # the collection has no documents yet: the same answer as for one the key cannot see
        raise collection_not_found(collection) from None
    except IdempotencyKeyReused as exc:
        raise KeyReused(exc.args[0]) from None


class KeyReused(Exception):
    """A retried request key that named another question (answered 409)."""


def _key_reused(exc: KeyReused) -> Response:
    return error_response(409, "idempotency_key_reused",
                          "This request id (Idempotency-Key) was used for another question; use a new one.")


def _wants_stream(body: dict[str, Any]) -> bool:
    value = body.get("stream")
    if value is not None and not isinstance(value, bool):
        raise FieldError("stream", "must be true or false")
    return bool(value)


def _answer(door: WaitingDoor, accepted: Accepted, key: SessionKey, collection: str, *, stream: bool) -> Response:
    """Answer here and now (the question is stored and its job held); bad questions, limits and
    unknown collections were ordinary JSON errors before this, as always."""
    session_id, key_id, request_id = key.thread, current_key().id, g.request_id

    def finished(answer: Answer) -> dict[str, Any]:
        log.info("api.answered message_id=%s key_id=%s streamed=%s", answer.message_id, key_id, stream,
                 extra={"request_id": request_id, "platform": PLATFORM})
        return answer_json(answer, session_id=session_id, collection=collection)

    if stream:  # server-sent events (see ``sse``)
        events = sse.answer_events(door.answer_stream(accepted), finished)
        return Response(events, mimetype="text/event-stream", headers=sse.HEADERS)
    return jsonify(finished(door.answer(accepted)))


def _replay(door: WaitingDoor, accepted: Accepted, *, stream: bool) -> Response:
    """A retried request: the answer it got (never a second one), the apology it got, or, while it
    is being answered elsewhere, 202 and where to fetch it. One whose holder died is answered here."""
    outcome = door.outcome(accepted.question_id)
    if outcome.state is State.ANSWERING:
        resumed = door.resume(accepted)
        if resumed is not None:
            return _answer(door, resumed, outcome.key, outcome.collection, stream=stream)
        response = jsonify(question=question_json(outcome))
        response.status_code = 202
        response.headers["Location"] = f"{API_PREFIX}/questions/{outcome.question_id}"
        response.headers["Retry-After"] = "2"
        return response
    if outcome.state is State.FAILED:
        return _failed(outcome)
    assert outcome.answer is not None
    document = answer_json(outcome.answer, session_id=outcome.key.thread, collection=outcome.collection)
    if stream:
        return Response(iter([sse.event("answer", document)]), mimetype="text/event-stream", headers=sse.HEADERS)
    return jsonify(document)


def _failed(outcome: Outcome) -> Response:
    error = failure_json(outcome)
    return error_response(503, error["code"], error["message"], reference=error["reference"])


def failure_json(outcome: Outcome) -> dict[str, Any]:
    message = f"This question got no answer (reference {outcome.reference}); ask it again with a new request id."
    return {"code": "answer_failed", "message": message, "reference": outcome.reference}


def question_json(outcome: Outcome) -> dict[str, Any]:
    answer = outcome.answer
    return {
        "id": outcome.question_id,
        "state": outcome.state.value,
        "question": outcome.text,
        "session_id": outcome.key.thread,
        "collection": outcome.collection,
        "created_at": outcome.created_at.isoformat(),
        "answer": answer_json(answer, session_id=outcome.key.thread, collection=outcome.collection) if answer else None,
        "error": failure_json(outcome) if outcome.state is State.FAILED else None,
    }


def answer_json(answer: Answer, *, session_id: str, collection: str) -> dict[str, Any]:
    return {
        "answer": answer.text,
        "citations": [c.__dict__ for c in answer.citations],
        "session_id": session_id,
        "grounded": answer.grounded,
        "collection": collection,
    }


# -- documents and jobs ------------------------------------------------------------------------------
def _document_routes(blueprint: Blueprint, services: ApiServices) -> None:
    sessions, limits = services.database.sessions, services.limits

    @blueprint.get("/collections/<name>/documents")
    def list_documents(name: str) -> Response:
        visible_collection(name)
        limit = int_arg("limit", default=100, low=1, high=limits.max_page)
        offset = int_arg("offset", default=0, low=0, high=MAX_DB_INT)
        found = catalog.list_documents(sessions, name, limit=limit, offset=offset)
        if found is None:
            raise collection_not_found(name)
        total, rows = found
        return jsonify(collection=name, total=total, documents=[document_json(r) for r in rows])

    @blueprint.post("/collections/<name>/documents")
    def add_documents(name: str) -> Response:
        visible_collection(name)
        if request.mimetype == "multipart/form-data":
            job = _submit_upload(services, name)
        elif request.is_json:
            url = web_url("url", text(json_object({"url"}), "url", required=True, max_chars=MAX_URL_CHARS) or "")
            job = services.ingest.submit_url(name, url, api_key_id=current_key().id)
        else:
            raise UnsupportedMediaType("Upload a file as multipart/form-data, or send {\"url\": ...} as JSON.")
        response = jsonify(job=job_json(job))
        response.status_code = 202
        response.headers["Location"] = f"{API_PREFIX}/jobs/{job.id}"
        return response

    @blueprint.delete("/collections/<name>/documents")
    def delete_document(name: str) -> Response:
        visible_collection(name)
        document_id, source = _document_selector()
        deleted = None
        if (document_id or 0) <= MAX_DB_INT and "\x00" not in (source or ""):  # else it cannot be stored
            deleted = catalog.delete_document(sessions, name, document_id=document_id, source=source)
        if deleted is None:
            raise Missing(f"No such document in collection {name!r}.")
        return jsonify(deleted=document_json(deleted))

    @blueprint.get("/jobs/<int:job_id>")
    def job(job_id: int) -> Response:
        missing = Missing(f"No job with id {job_id}.")
        if job_id > MAX_DB_INT:
            raise missing
        view = services.ingest.get(job_id)
        if not current_key().can_see(view.collection):
            raise missing
        return jsonify(job=job_json(view))


def _submit_upload(services: ApiServices, collection: str) -> JobView:
    upload = request.files.get("file")
    if upload is None:
        raise FieldError("file", "is required (a multipart file field named 'file')")
    filename = _upload_name(upload)
    data = upload.read(services.limits.max_upload_bytes + 1)
    if len(data) > services.limits.max_upload_bytes:
        raise RequestEntityTooLarge(f"file: larger than the limit of {services.limits.max_upload_bytes} bytes.")
    if not data:
        raise FieldError("file", "is empty")
    raw_link = request.form.get("link")
    link = web_url("link", raw_link) if raw_link else None
    return services.ingest.submit_upload(collection, filename, data, link=link, api_key_id=current_key().id)


def _upload_name(upload: FileStorage) -> str:
    """The file's base name (no folders); its suffix must be one DocRag can read."""
    name = PurePosixPath((upload.filename or "").replace("\\", "/")).name
    name = plain_text("file", "".join(ch for ch in name if ch.isprintable()).strip(), max_chars=200)
    suffix = PurePosixPath(name).suffix.lower()
    if not name or suffix not in SUPPORTED_SUFFIXES:
        raise FieldError("file", f"needs a file name ending in one of {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    return name


def _document_selector() -> tuple[int | None, str | None]:
    """``document`` is an id (digits) or a source; sources are URLs or names, never bare digits."""
    raw = request.args.get("document")
    if not raw:
        raise FieldError("document", "is required: the document's id or its source, as listed")
    if len(raw) > MAX_URL_CHARS:
        raise FieldError("document", f"is longer than {MAX_URL_CHARS} characters")
    if raw.isascii() and raw.isdigit():
        return int(raw), None
    return None, raw


def document_json(row: catalog.DocumentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "link": row.link,
        "title": row.title,
        "chunks": row.chunks,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


def job_json(job: JobView) -> dict[str, Any]:
    return {
        "id": job.id,
        "collection": job.collection,
        "kind": job.kind,
        "source": job.source,
        "status": job.status,
        "progress": {"done": job.done, "total": job.total},
        "result": job.result,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


# -- health, readiness, description ---------------------------------------------------------------
def _status_routes(blueprint: Blueprint, services: ApiServices) -> None:
    head = schema.head_revision()
    probe_engine = open_probe_engine(services.database)
    readiness = BoundedReadiness(lambda: readiness_checks(services, head, engine=probe_engine))

    @blueprint.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    @blueprint.get("/ready")
    def ready() -> Response:
        checks = readiness()
        if all(value == "ok" for value in checks.values()):
            return jsonify(status="ready", checks=checks)
        failing = ", ".join(f"{name}: {value}" for name, value in checks.items() if value != "ok")
        response = jsonify(error={"code": "not_ready", "message": f"Not ready ({failing})."}, checks=checks)
        response.status_code = 503
        return response

    @blueprint.get("/openapi.json")
    def openapi() -> Response:
        limits = services.limits
        return jsonify(openapi_spec(
            server_url=API_PREFIX,
            max_upload_bytes=limits.max_upload_bytes,
            max_question_chars=services.engine.options.max_question_chars,
            max_page=limits.max_page,
        ))


def readiness_checks(services: ApiServices, head: str | None, *, engine: sa.Engine | None = None) -> dict[str, str]:
    checks = {"database": "ok", "schema": "ok", "queue": "ok"}
    try:
        current = schema.current_revision(engine or services.database.engine)
    except DatabaseUnavailable as exc:
        return {"database": f"unavailable: {exc.reason}", "schema": "unknown", "queue": "unknown"}
    except sa.exc.SQLAlchemyError:
        return {"database": "unreachable", "schema": "unknown", "queue": "unknown"}
    if current != head:
        checks["schema"] = f"at {current}, code needs {head}: run `docrag db upgrade`"
    checks["queue"] = _queue_state(services.jobs)
    return checks


def _queue_state(jobs: procrastinate.App) -> str:
    try:
        return "ok" if jobs.check_connection() else "job tables missing"
    except Exception:  # any failure means "not ready"; the reason is in the log
        log.warning("api.queue_unreachable", exc_info=True)
        return "unreachable"


# -- every request ---------------------------------------------------------------------------------
def _start_request(limits: ApiLimits) -> Callable[[], None]:
    def start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        upload = request.endpoint == f"{BLUEPRINT}.add_documents" and request.mimetype == "multipart/form-data"
        request.max_content_length = limits.max_upload_bytes + _FORM_OVERHEAD if upload else limits.max_json_bytes

    return start


def _tag_response(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    if g.get("question_id") is not None:  # stored: GET /questions/<id> finds it, whatever happens to this reply
        response.headers["X-Question-Id"] = str(g.question_id)
    response.headers["Cache-Control"] = "no-store"
    return response
