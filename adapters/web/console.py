"""The console for documentation owners, ``/console``: what was asked, what the docs could not
answer, which documents are cited, one question's full trace, and a CSV export.

Server-rendered, no JavaScript, charts as inline SVG (adapters/web/charts.py), the playground's
strict CSP. Every query is scoped to the viewer's collections; a trace outside them is the same
404 as a trace that does not exist. Who may look is decided by :func:`console_viewer` alone.
"""
from __future__ import annotations

import csv
import io
import ipaddress
from dataclasses import dataclass
from typing import Callable, Iterator

from flask import Blueprint, Response, abort, g, render_template, request, stream_with_context
from sqlalchemy.orm import Session, sessionmaker

from adapters.web.auth import bearer_token
from adapters.web.charts import share_bar, stacked_bars
from adapters.web.playground import SECURITY_HEADERS
from adapters.web.signin.viewer import current_viewer
from core.tenancy.apikeys import ApiKeys
from core.console import stats
from core.console.traces import OUTCOMES

PREFIX = "/console"
DEFAULT_DAYS, MAX_DAYS = 30, 365
PAGE = 50


@dataclass(frozen=True)
class Viewer:
    """Who looks at the console, and the collections they may see (None: every collection)."""

    name: str
    collections: tuple[str, ...] | None


def console_viewer(keys: ApiKeys) -> Callable[[], Viewer | None]:
    """A signed-in person (adapters/web/signin) sees their workspace's collections; an API key sees
    its collections; a request from this machine (loopback, after trusted proxies) sees them all;
    anyone else nobody."""

    def viewer() -> Viewer | None:
        person = current_viewer(public_ok=False)  # never the anonymous public-playground visitor
        if person is not None:
            return Viewer(person.name, person.collections)
        token = bearer_token(request.headers.get("Authorization"))
        if token is not None:
            info = keys.verify(token)
            return Viewer(f"API key {info.prefix}…", info.collections) if info else None
        try:
            loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
        except ValueError:
            loopback = False
        return Viewer("this machine", None) if loopback else None

    return viewer


def console_blueprint(sessions: sessionmaker[Session], viewer_of: Callable[[], Viewer | None]) -> Blueprint:
    blueprint = Blueprint("console", __name__, url_prefix=PREFIX, template_folder="templates",
                          static_folder="static", static_url_path="/static")

    @blueprint.before_request
    def admit() -> None:
        g.console_viewer = viewer_of()  # once per request: a key is verified against the database
        if g.console_viewer is None:
            abort(403)

    @blueprint.after_request
    def secure(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    def scope(session: Session) -> dict[int, str]:
        """The collections this request looks at: the viewer's, narrowed by ?collection=."""
        names = g.console_viewer.collections
        if names is None:
            names = tuple(n for n in stats.all_collection_names(session))
        wanted = request.args.get("collection")
        if wanted:
            names = tuple(n for n in names if n == wanted)
        return stats.collection_ids(session, names)

    def page(template: str, session: Session, ids: dict[int, str], **values: object) -> str:
        viewer = g.console_viewer
        visible = viewer.collections if viewer.collections is not None else stats.all_collection_names(session)
        return render_template(template, visible=visible, chosen=request.args.get("collection", ""),
                               days=_days(), **values)

    @blueprint.get("/")
    def overview() -> str:
        with sessions() as session:
            ids = scope(session)
            found = stats.overview(session, list(ids), days=_days())
            charts = {
                "doors": stacked_bars(found.days, found.per_door, title="Questions per day by door"),
                "shares": share_bar({o: found.share(o) for o in OUTCOMES}, title="Outcomes"),
                "feedback": stacked_bars(found.days, {"👍": found.feedback["up"], "👎": found.feedback["down"]},
                                         title="Feedback per day"),
            }
            return page("console_overview.html", session, ids, overview=found, charts=charts)

    @blueprint.get("/gaps")
    def gaps() -> str:
        with sessions() as session:
            ids = scope(session)
            return page("console_gaps.html", session, ids, groups=stats.gaps(session, ids))

    @blueprint.get("/documents")
    def documents() -> str:
        with sessions() as session:
            ids = scope(session)
            rows = stats.documents(session, ids)
            return page("console_documents.html", session, ids, cited=[r for r in rows if r.cited],
                        never=[r for r in rows if not r.cited])

    @blueprint.get("/questions")
    def questions() -> str:
        outcome = request.args.get("outcome") or None
        if outcome is not None and outcome not in OUTCOMES:
            abort(400)
        before = request.args.get("before", type=int)
        with sessions() as session:
            ids = scope(session)
            rows = stats.questions(session, ids, outcome=outcome, before=before, limit=PAGE)
            return page("console_questions.html", session, ids, rows=rows, outcome=outcome or "",
                        outcomes=OUTCOMES, next_before=rows[-1].id if len(rows) == PAGE else None)

    @blueprint.get("/questions/<int:trace_id>")
    def trace(trace_id: int) -> str:
        with sessions() as session:
            ids = scope(session)
            found = stats.trace(session, trace_id, ids)
            if found is None:
                abort(404)
            return page("console_trace.html", session, ids, trace=found)

    @blueprint.get("/questions.csv")
    def export() -> Response:
        with sessions() as session:
            ids = scope(session)
        return Response(stream_with_context(_csv_rows(sessions, ids)), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="questions.csv"'})

    return blueprint


def _days() -> int:
    days = request.args.get("days", DEFAULT_DAYS, type=int)
    return min(max(days, 1), MAX_DAYS)


CSV_COLUMNS = ("id", "asked_at", "collection", "door", "outcome", "confidence", "total_ms", "feedback", "question")


def _csv_rows(sessions: sessionmaker[Session], ids: dict[int, str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    with sessions() as session:
        for n, row in enumerate(stats.all_questions(session, ids)):
            writer.writerow((row.id, row.asked_at.isoformat(), row.collection, row.platform, row.outcome,
                             "" if row.confidence is None else f"{row.confidence:.3f}",
                             "" if row.total_ms is None else f"{row.total_ms:.0f}", row.feedback,
                             _spreadsheet_safe(row.question or "")))
            if n % 500 == 499:
                yield flush()
    yield flush()


def _spreadsheet_safe(text: str) -> str:
    """A cell starting with = + - @ is a formula to a spreadsheet: a question must stay text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
