"""The playground: a server-rendered chat page at ``/`` for trying DocRag in a browser.

Safe by construction: no JavaScript at all, answers rendered by ``render`` (Markdown without raw
HTML), a strict Content-Security-Policy, CSRF tokens on every POST (double-submit cookie plus an
Origin check), and no API key anywhere near the page. Questions go through the lifecycle of waiting
doors (core/questions/waiting.py) with platform "web", so the same rate limits apply as on every
other door; each form carries a one-time request id, so a form sent twice is one question, and a
question whose web process died mid-answer is answered by its durable job (shown on reload).

An answer the model is still writing streams into the page itself: the reply to the question's
POST is the page, sent in pieces as the words arrive (the browser shows an HTML document while it
loads), with the finished answer at the end replacing the draft (by CSS). No script, so the CSP
stays as it is. An answer that is ready at once (the extract) keeps post-redirect-get.
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, make_response, redirect, render_template, request, stream_with_context
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from adapters.web.document_page import add_document_page, document_href
from adapters.web.render import answer_html, safe_href
from adapters.web.signin.viewer import current_viewer, viewer_refusal
from adapters.web.sse import finish_unseen
from core.answers.edit_buffer import coalesced
from core.questions.engine import Engine
from core.questions.waiting import IdempotencyKeyReused, WaitingDoor
from core.errors import DocRagError, RateLimited, UpstreamUnavailable, new_reference
from core.errors import NotFound as Missing
from core.ingest.learned_label import learned_label
from core.questions import transcripts
from core.tenancy.collections import collection_name_for
from core.types import Answer, SessionKey

log = logging.getLogger(__name__)

PLATFORM = "web"
WORKSPACE = CHANNEL = "playground"  # every visitor shares the page's channel and workspace limits
VISITOR_COOKIE, THREAD_COOKIE, CSRF_COOKIE = "docrag_visitor", "docrag_thread", "docrag_csrf"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_FORM_BYTES = 64 * 1024  # a question and a token; anything bigger is not from this page
LIVE_MARK = Markup("<!--docrag:live-->")  # where the streamed draft goes, and where the finished turn goes
PIECE_INTERVAL_S = 0.1  # a token-by-token model costs one network write per interval, not per token
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Visitor:
    """Who is on the page (cookie ids), which conversation they are in, and where they connect from
    (rate-limited as well as the cookie id, which a client can drop at will)."""

    id: str
    thread: str
    csrf: str
    address: str = ""

    @property
    def key(self) -> SessionKey:
        return SessionKey(platform=PLATFORM, workspace=WORKSPACE, channel=CHANNEL, thread=self.thread, user=self.id,
                          address=self.address)


def playground_blueprint(
    engine: Engine, *, door: WaitingDoor | None = None, collection: str | None = None, viewers_only: bool = False
) -> Blueprint:
    """``collection``: what the page answers from (default: the engine's default collection).
    ``door``: the questions' lifecycle (core/questions/waiting.py; bots/web.py passes one holding
    durable jobs; None: one without, for a bare test app). ``viewers_only``: admit only signed-in
    people, or anyone when the playground is public (adapters/web/signin); a signed-in person's page
    answers from their workspace's collection."""
    door = door or WaitingDoor(engine, None)
    blueprint = Blueprint(
        "playground", __name__, template_folder="templates", static_folder="static",
        static_url_path="/playground/static",
    )
    blueprint.before_request(_limit_body)
    if viewers_only:
        blueprint.before_request(_viewers_only)
    blueprint.after_request(_secure)
    blueprint.register_error_handler(HTTPException, _http_error_page)
    blueprint.register_error_handler(Exception, _unexpected_error_page)

    def served_collection() -> str:
        return served_collection_for(engine, collection)

    add_document_page(blueprint, engine, served_collection)

    @blueprint.get("/")
    def page() -> Response:
        return _page(engine, current_visitor())

    @blueprint.post("/ask")
    def ask() -> Response:
        visitor = current_visitor()
        refusal = _csrf_refusal(visitor)
        if refusal is not None:
            return refusal
        question = request.form.get("question", "")
        try:
            accepted = door.accept(visitor.key, question, collection=served_collection(), request=_request_key(visitor))
            if not accepted.new:  # the same form sent again (a double click, a reload): one question
                accepted = door.resume(accepted)  # answered here only if whoever had it died
                if accepted is None:
                    return _remember(redirect("/#latest", code=303), visitor)
            stream = door.answer_stream(accepted)
            first = _first_piece(stream)
        except DocRagError as exc:
            return _page(engine, visitor, error=_apology(exc), question=question, status=_status(exc))
        except IdempotencyKeyReused:
            return _page(engine, visitor, error="This form was sent already. Ask again here.", status=409)
        if first is None:  # answered at once: nothing to watch
            return _remember(redirect("/#latest", code=303), visitor)
        page = _live_page(engine, visitor, first, stream)
        return _remember(Response(stream_with_context(page), mimetype="text/html"), visitor)

    @blueprint.post("/new")
    def new_conversation() -> Response:
        visitor = current_visitor()
        refusal = _csrf_refusal(visitor)
        if refusal is not None:
            return refusal
        fresh = Visitor(id=visitor.id, thread=_new_thread(visitor.id), csrf=visitor.csrf, address=visitor.address)
        return _remember(redirect("/", code=303), fresh)

    return blueprint


# -- visitors, cookies, CSRF ----------------------------------------------------------------------------
def current_visitor() -> Visitor:
    """The visitor from their cookies; new random ids for anything missing or malformed.

    The address is the connection's peer, or what trusted proxies say it is: bots/web.py applies
    werkzeug's ProxyFix only for DOCRAG_TRUSTED_PROXIES, so a client's own X-Forwarded-For is ignored."""
    viewer = current_viewer()
    signed_in_id = viewer.id if viewer is not None and viewer.signed_in else None
    visitor_id = signed_in_id or _cookie(VISITOR_COOKIE) or secrets.token_urlsafe(16)
    thread = request.cookies.get(THREAD_COOKIE, "")
    if not thread.startswith(visitor_id + ".") or not _TOKEN.fullmatch(thread.rpartition(".")[2]):
        thread = _new_thread(visitor_id)  # a thread is bound to its visitor: no borrowing another's
    csrf = _cookie(CSRF_COOKIE) or secrets.token_urlsafe(24)
    return Visitor(id=visitor_id, thread=thread, csrf=csrf, address=request.remote_addr or "")


def _request_key(visitor: Visitor) -> str | None:
    """The form's one-time id (a fresh one on every page): the same form sent twice is one question."""
    sent = request.form.get("request_id", "")
    return f"{PLATFORM}:{visitor.id}:{sent}" if _TOKEN.fullmatch(sent) else None


def _cookie(name: str) -> str | None:
    value = request.cookies.get(name, "")
    return value if _TOKEN.fullmatch(value) else None


def _new_thread(visitor_id: str) -> str:
    return f"{visitor_id}.{secrets.token_urlsafe(16)}"


def _remember(response: Response, visitor: Visitor) -> Response:
    options: dict[str, Any] = {"httponly": True, "samesite": "Strict", "secure": request.is_secure, "path": "/"}
    year = 365 * 24 * 3600
    response.set_cookie(VISITOR_COOKIE, visitor.id, max_age=year, **options)
    response.set_cookie(CSRF_COOKIE, visitor.csrf, max_age=year, **options)
    response.set_cookie(THREAD_COOKIE, visitor.thread, max_age=30 * 24 * 3600, **options)
    return response


def _csrf_refusal(visitor: Visitor) -> Response | None:
    """403 unless the form's token equals the cookie's, and the request comes from this site."""
    sent = request.form.get("csrf_token", "")
    same_token = _cookie(CSRF_COOKIE) is not None and hmac.compare_digest(sent.encode(), visitor.csrf.encode())
    origin = request.headers.get("Origin")
    same_origin = origin is None or _origin(origin) == _origin(request.host_url)
    if same_token and same_origin:
        return None
    response = make_response(render_template(
        "playground_error.html", message="This form expired or came from another site. Reload the page and try again."
    ), 403)
    return _remember(response, visitor)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _limit_body() -> None:
    request.max_content_length = MAX_FORM_BYTES


def served_collection_for(engine: Engine, collection: str | None = None) -> str:
    """The collection the playground answers from (and whose documents and sources it shows): a
    signed-in person's workspace's, else ``collection``, else the playground workspace's mapping."""
    viewer = current_viewer()
    if viewer is not None and viewer.signed_in:
        return viewer.home_collection
    if collection:
        return collection
    with engine.sessions() as session:
        return collection_name_for(session, PLATFORM, WORKSPACE, engine.options.default_collection)


def _viewers_only() -> Response | None:
    return None if request.endpoint == "playground.static" else viewer_refusal(public_ok=True)


def _http_error_page(exc: HTTPException) -> Response:
    return make_response(render_template("playground_error.html", message=exc.description), exc.code or 500)


def _unexpected_error_page(exc: Exception) -> Response:
    reference = new_reference()
    log.exception("playground.unhandled_error reference=%s", reference)
    message = f"Something went wrong on our side (reference {reference}). Please try again."
    return make_response(render_template("playground_error.html", message=message), 500)


def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


# -- the page ----------------------------------------------------------------------------------------
def _page(
    engine: Engine, visitor: Visitor, *, error: str | None = None, question: str = "", status: int = 200
) -> Response:
    found = transcripts.transcript(engine.sessions, visitor.key)
    html = render_template(
        "playground.html",
        turns=[_view(turn, found.collection) for turn in (found.turns if found else [])],
        collection=found.collection if found else None,
        csrf_token=visitor.csrf,
        request_id=secrets.token_urlsafe(16),
        error=error,
        question=question,
        max_chars=engine.options.max_question_chars,
    )
    return _remember(make_response(html, status), visitor)


def _first_piece(stream: Generator[str, None, Answer]) -> str | None:
    try:
        return next(stream)
    except StopIteration:
        return None


def _live_page(engine: Engine, visitor: Visitor, first: str, stream: Generator[str, None, Answer]) -> Iterator[str]:
    """The page with the question, the answer's draft growing piece by piece, then the finished
    turn (answer and sources, or the apology) and the rest of the page."""
    found = transcripts.transcript(engine.sessions, visitor.key)
    assert found is not None  # the question was just stored
    html = render_template(
        "playground.html", turns=[_view(turn, found.collection) for turn in found.turns],
        collection=found.collection, csrf_token=visitor.csrf, request_id=secrets.token_urlsafe(16), error=None,
        question="",
        max_chars=engine.options.max_question_chars, live=LIVE_MARK,
    )
    head, between, tail = html.split(LIVE_MARK)
    pieces = coalesced(stream, interval_s=PIECE_INTERVAL_S)
    try:
        yield head + str(escape(first))
        try:
            for piece in pieces:
                yield str(escape(piece))
            finished = transcripts.transcript(engine.sessions, visitor.key)
            turn = _view(finished.turns[-1], finished.collection) if finished else None
        except DocRagError as exc:
            turn = {"role": "error", "text": _apology(exc)}
        yield between + render_template("playground_turn.html", turn=turn) + tail
    except GeneratorExit:  # the visitor left: the answer is still written and stored once
        finish_unseen(stream)
        raise


def _view(turn: dict[str, Any], collection: str) -> dict[str, Any]:
    """A stored turn ready for the template: answers as safe HTML, sources with safe links (a
    document with no web address links to its page here)."""
    anchor = f"m{int(turn['id'])}"
    citations = [
        {**c, "anchor": f"{anchor}-{int(c['n'])}", "href": _source_href(collection, str(c.get("source", ""))),
         "learned": _learned_text(c)}
        for c in turn["citations"]
    ]
    html = answer_html(turn["text"], anchor_prefix=anchor, citations=[int(c["n"]) for c in citations])
    return {**turn, "html": html, "sources": citations}


def _learned_text(citation: dict[str, Any]) -> str | None:
    """"answered in #channel on DATE" for an answer learned from a chat thread, else None."""
    label = learned_label(str(citation.get("title", "")))
    return label.text if label is not None else None


def _source_href(collection: str, source: str) -> str | None:
    return safe_href(source) or document_href(collection, source)


def _apology(exc: DocRagError) -> str:
    if isinstance(exc, Missing):
        return "There are no documents to answer from yet. Ingest some first: docrag ingest docs/"
    return str(exc)


def _status(exc: DocRagError) -> int:
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, UpstreamUnavailable):
        return 503
    return 404 if isinstance(exc, Missing) else 400
