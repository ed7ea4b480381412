"""``/api/v1/sources``: list, add, show, sync and remove sources, within the key's collections.

An API key holder may add web pages, sitemaps and git repositories over https; their syncs refuse
private and local addresses (core/sources). Folders (the server's own disk) and credentials (names
of the server's environment variables) are for operators, through `docrag source add`.
A sync is queued for a worker; the source's state says how it went.
"""
from __future__ import annotations

import re
from typing import Any

import procrastinate
from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import Conflict

from adapters.web.auth import current_key, visible_collection
from adapters.web.errors import FieldError
from adapters.web.openapi_sources import BRANCH_PATTERN, GLOB_MAX, INTERVAL_PATTERN
from adapters.web.validation import MAX_DB_INT, json_object, matching, text, web_url
from core.errors import InvalidInput
from core.errors import NotFound as Missing
from core.sources.registry import SourceSpec, Sources, SourceView

_BRANCH = re.compile(BRANCH_PATTERN)
_INTERVAL = re.compile(INTERVAL_PATTERN)
_FIELDS = {"kind", "target", "collection", "name", "schedule", "branch", "include", "exclude", "link_ref"}


def add_source_routes(blueprint: Blueprint, sources: Sources | None, jobs: procrastinate.App) -> None:
    def registry() -> Sources:
        if sources is None:
            raise Missing("Sources are not available on this server.")
        return sources

    def visible(source_id: str) -> SourceView:
        missing = Missing(f"No source with id {source_id}.")
        if not (source_id.isascii() and source_id.isdigit()) or int(source_id) > MAX_DB_INT:
            raise missing
        try:
            view = registry().get(int(source_id))
        except Missing:
            raise missing from None
        if not current_key().can_see(view.collection):
            raise missing
        return view

    @blueprint.get("/sources")
    def list_sources() -> Response:
        return jsonify(sources=[source_json(v) for v in registry().list(current_key().collections)])

    @blueprint.post("/sources")
    def add_source() -> Response:
        spec = _spec(json_object(_FIELDS))
        try:
            view = registry().add(spec, added_by="api")
        except InvalidInput as exc:
            if "already has a source named" in str(exc):
                raise Conflict(str(exc)) from None
            raise
        queued = _queue(jobs, view.id)
        response = jsonify(source=source_json(view), sync_queued=queued)
        response.status_code = 201
        response.headers["Location"] = f"{blueprint.url_prefix}/sources/{view.id}"
        return response

    @blueprint.get("/sources/<source_id>")
    def get_source(source_id: str) -> Response:
        return jsonify(source=source_json(visible(source_id)))

    @blueprint.post("/sources/<source_id>/sync")
    def sync_source(source_id: str) -> Response:
        view = visible(source_id)
        response = jsonify(source=source_json(view), sync_queued=_queue(jobs, view.id))
        response.status_code = 202
        return response

    @blueprint.delete("/sources/<source_id>")
    def delete_source(source_id: str) -> Response:
        view = visible(source_id)
        registry().remove(view.id)
        return jsonify(deleted=source_json(view))


def _spec(body: dict[str, Any]) -> SourceSpec:
    kind = text(body, "kind", required=True, max_chars=10)
    if kind not in ("url", "git"):
        raise FieldError("kind", "must be 'url' (a page or a sitemap) or 'git' (an https repository)")
    target = web_url("target", text(body, "target", required=True, max_chars=2000) or "")
    collection = visible_collection(text(body, "collection", required=True, max_chars=100) or "")
    schedule = matching("schedule", text(body, "schedule", max_chars=20), _INTERVAL, "must be an interval: 30m, 6h, 1d")
    options: dict[str, Any] = {}
    if kind == "git":
        options["branch"] = matching("branch", text(body, "branch", max_chars=100), _BRANCH, "is not a branch name")
        options["link_ref"] = body.get("link_ref")
        for name in ("include", "exclude"):
            options[name] = _globs(body, name)
    else:
        for name in ("branch", "include", "exclude", "link_ref"):
            if body.get(name) is not None:
                raise FieldError(name, "applies to git sources only")
    if options.get("link_ref") not in (None, "branch", "commit"):
        raise FieldError("link_ref", "must be 'branch' or 'commit'")
    return SourceSpec(kind=kind, target=target, collection=collection, name=text(body, "name", max_chars=200) or None,
                      options={k: v for k, v in options.items() if v}, schedule=schedule)


def _globs(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > GLOB_MAX or not all(isinstance(g, str) and 0 < len(g) <= 200 for g in value):
        raise FieldError(name, f"must be a list of at most {GLOB_MAX} glob patterns")
    return [text({name: g}, name, max_chars=200) or "" for g in value]


def _queue(jobs: procrastinate.App, source_id: int) -> bool:
    from core.sources.jobs import defer_sync

    return defer_sync(jobs, source_id)


def source_json(view: SourceView) -> dict[str, Any]:
    data = view.as_dict()
    data["options"] = {k: v for k, v in data["options"].items() if k != "added_by"}
    return data
