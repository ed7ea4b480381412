"""``/sources``: the state of the playground collection's sources, server-rendered.

Each source's kind, name, schedule, last sync (when, how long, what it did) and last error, so
whoever runs the playground sees at a glance whether the documents are current. It admits whom the
playground admits (signed in, or anyone when the playground is public: adapters/web/signin) and
shows the collection the playground answers from for that person, and nothing else, and never a credential (only the names of the variables holding them exist anyway); a
folder's server path is shown by its last part only. Same headers and CSP as the playground.
"""
from __future__ import annotations

from flask import Blueprint, Response, render_template

from adapters.web.playground import _secure, served_collection_for
from adapters.web.signin.viewer import viewer_refusal
from core.questions.engine import Engine
from core.sources.registry import Sources, SourceView


def sources_page_blueprint(
    engine: Engine, sources: Sources, *, collection: str | None = None, viewers_only: bool = False
) -> Blueprint:
    blueprint = Blueprint("sources_page", __name__, template_folder="templates")
    blueprint.after_request(_secure)
    if viewers_only:  # as the playground: bots/web.py mounts both so
        blueprint.before_request(lambda: viewer_refusal(public_ok=True))

    @blueprint.get("/sources")
    def page() -> Response:
        name = served_collection_for(engine, collection)
        rows = [_row(v) for v in sources.list([name])]
        return Response(render_template("sources_page.html", collection=name, sources=rows))

    return blueprint


def _row(view: SourceView) -> dict[str, object]:
    target = view.target.rstrip("/").rsplit("/", 1)[-1] if view.kind == "folder" else view.target
    counts = view.last_counts
    did = ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in ("read", "added", "updated", "unchanged", "removed",
                                                                   "pending_removal", "failed") if counts.get(k))
    return {
        "name": view.name, "kind": view.kind, "target": target, "status": view.status, "documents": view.documents,
        "schedule": view.schedule or "by hand",
        "last_sync": f"{view.last_sync_at:%Y-%m-%d %H:%M} UTC ({view.last_sync_seconds or 0:.1f} s)" if view.last_sync_at else "never",
        "did": did or ("nothing changed" if view.last_sync_at else ""),
        "error": view.last_error, "failures": view.consecutive_failures,
    }
