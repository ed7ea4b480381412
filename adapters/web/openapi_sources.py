"""The OpenAPI description of ``/api/v1/sources`` (merged into adapters/web/openapi.py)."""
from __future__ import annotations

from typing import Any

BRANCH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$"
INTERVAL_PATTERN = r"^[1-9][0-9]{0,4}[mhd]$"
GLOB_MAX = 20
_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~-]+(:[0-9]{1,5})?([/?#][!-~]*)?$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_MAX_ID = 2**31 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_STRING, _INT, _OBJECT = {"type": "string"}, {"type": "integer"}, {"type": "object"}
_TIME = _nullable({"type": "string", "format": "date-time"})
_GLOBS = _nullable({"type": "array", "maxItems": GLOB_MAX,
                    "items": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^\u0000]+$"}})

SOURCE_SCHEMAS: dict[str, Any] = {
    "Source": {
        "type": "object",
        "required": ["id", "collection", "name", "kind", "target", "status", "documents"],
        "properties": {
            "id": _INT, "collection": _STRING, "name": _STRING,
            "kind": {**_STRING, "description": "folder, url or git"},
            "target": {**_STRING, "description": "The path, URL or repository, without any password."},
            "options": _OBJECT,
            "credentials": {**_OBJECT, "description": "Names of environment variables, never their values."},
            "schedule": _nullable(_STRING),
            "status": {**_STRING, "description": "new, syncing, ok or failed"},
            "documents": _INT,
            "next_sync_at": _TIME, "last_sync_at": _TIME, "last_sync_seconds": _nullable({"type": "number"}),
            "last_counts": {**_OBJECT, "description": "read, added, updated, unchanged, renamed, removed, failed..."},
            "last_error": _nullable(_STRING), "last_error_at": _TIME,
            "consecutive_failures": _INT, "created_at": _TIME,
        },
    },
    "SourceEnvelope": {
        "type": "object", "required": ["source"],
        "properties": {"source": _ref("Source"), "sync_queued": {"type": "boolean"}},
    },
    "SourceList": {"type": "object", "required": ["sources"],
                   "properties": {"sources": {"type": "array", "items": _ref("Source")}}},
    "SourceDeleted": {"type": "object", "required": ["deleted"], "properties": {"deleted": _ref("Source")}},
    "NewSource": {
        "type": "object",
        "required": ["kind", "target", "collection"],
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": ["url", "git"],
                     "description": "url: a page or a sitemap; git: a repository over https."},
            "target": {"type": "string", "maxLength": 2000, "pattern": _URL},
            "collection": {"type": "string", "pattern": _NAME},
            "name": _nullable({"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^\u0000]+$",
                               "description": "Unique in the collection; default: from the target."}),
            "schedule": _nullable({"type": "string", "pattern": INTERVAL_PATTERN,
                                   "description": "Re-sync every 30m, 6h, 1d...; absent: by request only."}),
            "branch": _nullable({"type": "string", "pattern": BRANCH_PATTERN, "description": "git only."}),
            "include": {**_GLOBS, "description": "git only: globs of paths to ingest."},
            "exclude": {**_GLOBS, "description": "git only: globs of paths to leave out."},
            "link_ref": _nullable({"type": "string", "enum": ["branch", "commit"], "description": "git only."}),
        },
    },
}


def source_paths(errors: Any) -> dict[str, Any]:
    """``errors(*statuses)``: the shared error responses of adapters/web/openapi.py."""
    source_id = {"name": "source_id", "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_ID}, "description": "The source's id."}
    conflict = {"409": _json(_ref("Error"), "The collection already has a source of that name.")}
    return {
        "/sources": {
            "get": {
                "operationId": "listSources",
                "summary": "The sources of the key's collections, with their state and last errors.",
                "responses": {"200": _json(_ref("SourceList"), "The sources."), **errors(401)},
            },
            "post": {
                "operationId": "addSource",
                "summary": "Add a web page, sitemap or https git repository, and queue its first sync.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewSource")}}},
                "responses": {
                    "201": _json(_ref("SourceEnvelope"), "Added; its sync is queued.",
                                 headers={"Location": {"schema": {"type": "string"}}}),
                    **errors(400, 401, 404, 409, 413, 415, 503), **conflict,
                },
            },
        },
        "/sources/{source_id}": {
            "parameters": [source_id],
            "get": {
                "operationId": "getSource",
                "summary": "One source: options, schedule, last sync and last error.",
                "responses": {"200": _json(_ref("SourceEnvelope"), "The source."), **errors(401, 404)},
            },
            "delete": {
                "operationId": "deleteSource",
                "summary": "Remove a source and exactly its documents.",
                "responses": {"200": _json(_ref("SourceDeleted"), "The removed source."), **errors(401, 404)},
            },
        },
        "/sources/{source_id}/sync": {
            "parameters": [source_id],
            "post": {
                "operationId": "syncSource",
                "summary": "Queue a sync now (one at a time per source).",
                "responses": {"202": _json(_ref("SourceEnvelope"), "Queued, or already waiting."),
                              **errors(401, 404, 503)},
            },
        },
    }
