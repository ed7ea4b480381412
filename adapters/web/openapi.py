"""The OpenAPI 3 description of ``/api/v1``, written by hand to say exactly what the views do.

A test compares its paths and methods with the blueprint's routes, and schemathesis checks the
responses against it, so the description and the code cannot drift apart unnoticed.
"""
from __future__ import annotations

from typing import Any

from adapters.web.openapi_sources import SOURCE_SCHEMAS, source_paths

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
SESSION_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
IDEMPOTENCY_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# A question: no control characters (tab and newlines allowed) and at least one character that is not
# whitespace -- exactly what the engine accepts, spelled so ECMA-262 and Python read it the same way.
_CONTROL = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F"
_SPACE = r"\t\n\r \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
QUESTION_PATTERN = f"^[^{_CONTROL}]*[^{_CONTROL}{_SPACE}][^{_CONTROL}]*$"
# An http(s) URL in plain ASCII, without spaces.
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?([/?#][!-~]*)?$"
MAX_URL_CHARS = 2000
MAX_ID = 2**31 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "A field is missing or wrong; the message names it.",
        401: "Missing, wrong or revoked API key.",
        404: "Not found, or not visible to this key (the two look the same).",
        409: "The collection was indexed with another embedder, or (ask) the request id was used for another question.",
        413: "The body or upload is larger than the limit.",
        415: "The body is not of a supported content type.",
        429: "A rate limit was reached; Retry-After says when to try again.",
        503: "A dependency (language model, job queue, database) is unavailable.",
    }
    responses = {str(s): _json(_ref("Error"), meaning[s]) for s in statuses}
    if 401 in statuses:
        responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if 429 in statuses:
        responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds"}}
    return responses


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_STRING = {"type": "string"}
_INT = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": _STRING,
                    "message": _STRING,
                    "field": {**_STRING, "description": "The request field that is wrong."},
                    "reference": {**_STRING, "description": "An id to quote; it is in the server's logs."},
                },
            }
        },
    },
    "Citation": {
        "type": "object",
        "required": ["n", "title", "source"],
        "properties": {"n": _INT, "title": _STRING, "source": _STRING, "heading": _STRING},
    },
    "Answer": {
        "type": "object",
        "required": ["answer", "citations", "session_id", "grounded", "collection"],
        "properties": {
            "answer": _STRING,
            "citations": {"type": "array", "items": _ref("Citation")},
            "session_id": _STRING,
            "grounded": {"type": "boolean", "description": "False when the documents did not cover the question."},
            "collection": _STRING,
        },
    },
    "Question": {
        "type": "object",
        "required": ["id", "state", "question", "session_id", "collection", "created_at", "answer", "error"],
        "properties": {
            "id": _INT,
            "state": {"type": "string", "enum": ["answering", "answered", "failed"],
                      "description": "answering: accepted, the answer is being written (here or by a worker)."},
            "question": _STRING,
            "session_id": _STRING,
            "collection": _STRING,
            "created_at": _TIME,
            "answer": _nullable(_ref("Answer")),
            "error": {**_nullable({"type": "object"}), "description": "For failed: code, message and reference."},
        },
    },
    "QuestionEnvelope": {"type": "object", "required": ["question"], "properties": {"question": _ref("Question")}},
    "Turn": {
        "type": "object",
        "required": ["id", "role", "text", "citations", "created_at"],
        "properties": {
            "id": _INT,
            "role": {"type": "string", "enum": ["user", "assistant", "error"]},
            "text": _STRING,
            "citations": {"type": "array", "items": _ref("Citation")},
            "grounded": _nullable({"type": "boolean"}),
            "created_at": _TIME,
        },
    },
    "Conversation": {
        "type": "object",
        "required": ["session_id", "collection", "turns"],
        "properties": {"session_id": _STRING, "collection": _STRING, "turns": {"type": "array", "items": _ref("Turn")}},
    },
    "Document": {
        "type": "object",
        "required": ["id", "source", "link", "title", "chunks"],
        "properties": {
            "id": _INT, "source": _STRING, "link": _STRING, "title": _STRING, "chunks": _INT,
            "updated_at": _nullable(_TIME),
        },
    },
    "DocumentList": {
        "type": "object",
        "required": ["collection", "total", "documents"],
        "properties": {"collection": _STRING, "total": _INT, "documents": {"type": "array", "items": _ref("Document")}},
    },
    "Deleted": {
        "type": "object",
        "required": ["deleted"],
        "properties": {"deleted": _ref("Document")},
    },
    "IngestReport": {
        "type": "object",
        "properties": {
            "collection": _STRING, "added": _INT, "updated": _INT, "unchanged": _INT, "removed": _INT,
            "chunks": _INT, "seconds": {"type": "number"},
            "failed": {
                "type": "array",
                "items": {"type": "object", "properties": {"source": _STRING, "reason": _STRING}},
            },
            "skipped": {
                "type": "array",
                "description": "Documents with no text to index (empty, or only directives such as includes).",
                "items": {"type": "object", "properties": {"source": _STRING, "reason": _STRING}},
            },
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "collection", "kind", "source", "status", "progress", "created_at", "updated_at"],
        "properties": {
            "id": _INT,
            "collection": _STRING,
            "kind": {"type": "string", "enum": ["upload", "url"]},
            "source": {**_STRING, "description": "The uploaded file's name, or the URL."},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "progress": {
                "type": "object",
                "required": ["done"],
                "properties": {"done": _INT, "total": _nullable(_INT)},
            },
            "result": _nullable(_ref("IngestReport")),
            "error": _nullable(_STRING),
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    },
    "JobEnvelope": {"type": "object", "required": ["job"], "properties": {"job": _ref("Job")}},
    "Ready": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": _STRING,
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}


def _ask_request(max_question_chars: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["question"],
        "additionalProperties": False,
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": max_question_chars,
                         "pattern": QUESTION_PATTERN},
            # null is the same as leaving the field out (clients often send every field)
            "collection": {"type": "string", "pattern": NAME_PATTERN, "nullable": True,
                           "description": "Default (absent or null): the conversation's collection, else the key's first."},
            "session_id": {"type": "string", "pattern": SESSION_PATTERN, "nullable": True,
                           "description": "From an earlier answer, to ask a follow-up in that conversation; "
                                          "absent or null starts a new one."},
            "stream": {"type": "boolean", "nullable": True, "default": False,
                       "description": "true: answer in server-sent events (text/event-stream) as it is written."},
            "request_id": {"type": "string", "pattern": IDEMPOTENCY_PATTERN, "nullable": True,
                           "description": "An idempotency key, as the Idempotency-Key header (which wins if both are sent)."},
        },
    }


# One server-sent event (what SSE-aware tools check each event against); ``data`` is JSON text.
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["delta", "answer", "error"]},
        "data": {"type": "string", "description": "JSON: {\"text\"} for delta, an Answer for answer, an Error for error."},
    },
}

_STREAM_DESCRIPTION = (
    "With `\"stream\": true`: server-sent events. `event: delta` with `data: {\"text\": ...}`, the next "
    "piece of the answer (already with its final citation numbers), zero or more times; then exactly one "
    "`event: answer` whose data is the same Answer document as without streaming (its `answer` is the "
    "authoritative text) or `event: error` whose data is an Error document (with `reference`) when the "
    "language model failed mid-answer. Without a language model the only event is `answer`. Errors "
    "found before answering (400, 401, 404, 429, ...) are ordinary JSON responses.\n\n"
    "Every question is stored before it is answered; `X-Question-Id` on the response (sent before the "
    "first event) names it, and `GET /questions/{id}` returns its state and answer. If the server dies "
    "mid-answer, a durable job answers it within seconds of a worker running. Send an `Idempotency-Key` "
    "header (or `request_id`) to retry safely: a retry gets the answer the first request got (200, the "
    "same document; streamed, a single `answer` event), never a second answer; while the first is still "
    "being answered, 202 with `Location` to fetch; if it got an apology, 503 `answer_failed`. The key is "
    "scoped to the API key; reused for another question it is refused with 409 `idempotency_key_reused`. "
    "With both the header and `request_id`, the header counts."
)


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_STATUS = {"type": "object", "required": ["status"], "properties": {"status": _STRING}}
_NOT_READY = {"allOf": [_ref("Error"), {"type": "object", "properties": {"checks": {"type": "object"}}}]}
_COLLECTION = _path_param("name", {"type": "string", "pattern": NAME_PATTERN}, "A collection the key is scoped to.")
_PUBLIC: list[dict[str, Any]] = []  # no API key needed


def _paths(max_upload_bytes: int, max_question_chars: int, max_page: int) -> dict[str, Any]:
    return {
        "/ask": {
            "post": {
                "operationId": "ask",
                "summary": "Answer a question from the documents; pass session_id to follow up.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ask_request(max_question_chars)}},
                },
                "description": _STREAM_DESCRIPTION,
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "pattern": IDEMPOTENCY_PATTERN},
                                "description": "Retry safely: the same key gets the same answer, once."}],
                "responses": {
                    "200": {
                        "description": "The answer, its sources and the conversation's session_id "
                                       "(or, with stream=true, the events that carry them).",
                        "headers": {"X-Question-Id": {"schema": _INT, "description": "GET /questions/{id}"}},
                        "content": {
                            "application/json": {"schema": _ref("Answer")},
                            "text/event-stream": {"schema": _SSE_EVENT},
                        },
                    },
                    "202": _json(_ref("QuestionEnvelope"), "A retry of a question still being answered; fetch it there.",
                                 headers={"Location": {"schema": _STRING}, "Retry-After": {"schema": _STRING}}),
                    **_errors(400, 401, 404, 409, 413, 415, 429, 503),
                },
            }
        },
        "/questions/{question_id}": {
            "get": {
                "operationId": "getQuestion",
                "summary": "A question's state and answer (answered here, or by a worker after a crash).",
                "parameters": [_path_param("question_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                                           "The X-Question-Id of the ask, or the Location of its 202.")],
                "responses": {"200": _json(_ref("QuestionEnvelope"), "The question."), **_errors(401, 404)},
            }
        },
        "/conversations/{session_id}": {
            "get": {
                "operationId": "getConversation",
                "summary": "The turns of a conversation, with citations.",
                "parameters": [_path_param("session_id", {"type": "string", "pattern": SESSION_PATTERN},
                                           "The session_id an answer returned.")],
                "responses": {"200": _json(_ref("Conversation"), "The conversation."), **_errors(401, 404)},
            }
        },
        "/collections/{name}/documents": {
            "parameters": [_COLLECTION],
            "get": {
                "operationId": "listDocuments",
                "summary": "The documents of a collection.",
                "parameters": [
                    _query_param("limit", {"type": "integer", "minimum": 1, "maximum": max_page, "default": 100},
                                 "How many documents to return."),
                    _query_param("offset", {"type": "integer", "minimum": 0, "maximum": MAX_ID, "default": 0},
                                 "How many to skip."),
                ],
                "responses": {"200": _json(_ref("DocumentList"), "One page of documents."), **_errors(400, 401, 404)},
            },
            "post": {
                "operationId": "addDocuments",
                "summary": "Ingest an uploaded file or a URL (a page or a sitemap) in the background.",
                "description": (
                    f"Upload one file (multipart field `file`, at most {max_upload_bytes} bytes; .md, .rst, .txt, "
                    ".html or .pdf) or send `{\"url\": ...}`. An upload is identified by its file name: uploading "
                    "the same name again replaces it. Poll the returned job."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "link": {"type": "string", "maxLength": MAX_URL_CHARS, "pattern": URL_PATTERN,
                                             "description": "An http(s) URL citations of this file link to."},
                                },
                            }
                        },
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["url"],
                                "additionalProperties": False,
                                "properties": {
                                    "url": {"type": "string", "maxLength": MAX_URL_CHARS, "pattern": URL_PATTERN},
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "202": _json(_ref("JobEnvelope"), "Queued; GET the job to follow it.",
                                 headers={"Location": {"schema": {"type": "string"}}}),
                    **_errors(400, 401, 404, 413, 415, 503),
                },
            },
            "delete": {
                "operationId": "deleteDocument",
                "summary": "Delete one document and its chunks.",
                "parameters": [
                    {"name": "document", "in": "query", "required": True,
                     "schema": {"type": "string", "minLength": 1, "maxLength": MAX_URL_CHARS},
                     "description": "The document's id, or its source (a URL, or upload:<file name>), as listed."},
                ],
                "responses": {"200": _json(_ref("Deleted"), "The deleted document."), **_errors(400, 401, 404)},
            },
        },
        "/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "An ingestion job's status, progress and result.",
                "parameters": [
                    _path_param("job_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "The job's id."),
                ],
                "responses": {"200": _json(_ref("JobEnvelope"), "The job."), **_errors(401, 404)},
            }
        },
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "The process is alive.",
                "security": _PUBLIC,
                "responses": {"200": _json(_STATUS, "Alive.")},
            }
        },
        "/ready": {
            "get": {
                "operationId": "ready",
                "summary": "Database reachable, schema current, job queue reachable.",
                "security": _PUBLIC,
                "responses": {
                    "200": _json(_ref("Ready"), "Ready for traffic."),
                    "503": _json(_NOT_READY, "Not ready; checks says what failed."),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description.",
                "security": _PUBLIC,
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }
        },
    }


def openapi_spec(*, server_url: str, max_upload_bytes: int, max_question_chars: int, max_page: int) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "DocRag REST API",
            "version": "1.0.0",
            "description": "Ask questions answered from your documentation, and manage the documents. "
            'Every error is {"error": {"code", "message"}}.',
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": {**_paths(max_upload_bytes, max_question_chars, max_page), **source_paths(_errors)},
        "components": {
            "schemas": {**SCHEMAS, **SOURCE_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "docrag apikey create"}},
        },
    }
