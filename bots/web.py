"""The web process: a Flask application factory.

    gunicorn -c bots/gunicorn_conf.py 'bots.web:create_app()'      (or: docrag serve)

Each feature is a blueprint factory in ``BLUEPRINTS``; a factory returns None when its feature
is not configured. On the embedded default the process also runs background job workers.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable

import procrastinate
from flask import Blueprint, Flask, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from adapters.slack.app import build_bolt_app, slack_configured
from adapters.slack.blueprint import slack_blueprint
from adapters.slack.services import SlackServices
from adapters.web.api import ApiServices, api_blueprint
from adapters.web.console import console_blueprint, console_viewer
from adapters.web.errors import install_json_errors
from adapters.web.metrics import metrics_blueprint
from adapters.web.playground import playground_blueprint
from adapters.web.signin import SignIn, signin_blueprint
from adapters.web.sources_page import sources_page_blueprint
from bots.logs import configure_logging
from bots.web_signin import build_signin
from bots.wiring import Container, build_container, build_slack_services, open_job_queue, start_background_worker
from core.tenancy.apikeys import ApiKeys
from core.config import Settings, load_settings
from core.ingest.jobs import IngestJobs
from core.storage.queue import BackgroundWorker
from core.questions.lifecycle import Lifecycle
from core.questions.metrics import QueueDepth

log = logging.getLogger(__name__)

EXTENSION = "docrag"
# Job workers inside a web process share its interpreter (and GIL) with the requests Slack
# times: a few at a time keep acknowledgements quick; `docrag worker` processes scale further.
EMBEDDED_CONCURRENCY = 2


@dataclass
class WebRuntime:
    """What one web process holds on to, and releases on shutdown."""

    container: Container
    jobs: procrastinate.App
    lifecycle: Lifecycle
    slack: SlackServices | None = None
    worker: BackgroundWorker | None = None
    signin: SignIn | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        if self.slack is not None:
            self.slack.after_ack.shutdown()
        if self.worker is not None:
            self.worker.stop()
        for closer in self.closers:
            closer()
        self.jobs.close()


def health_blueprint(runtime: WebRuntime) -> Blueprint:
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    def healthz():  # liveness only: the process answers requests
        return jsonify(status="ok")

    return blueprint


def slack_blueprint_for(runtime: WebRuntime) -> Blueprint | None:
    settings = runtime.container.settings
    if runtime.slack is None:
        return None
    if not slack_configured(settings):  # e.g. a Socket Mode setup: `docrag slack socket` serves Slack
        log.warning("web.slack_not_mounted reason=SLACK_SIGNING_SECRET is not set")
        return None
    return slack_blueprint(build_bolt_app(settings, runtime.slack, runtime.container.database.engine))


def api_blueprint_for(runtime: WebRuntime) -> Blueprint:
    container = runtime.container
    sessions = container.database.sessions
    return api_blueprint(
        ApiServices(
            engine=container.engine,
            database=container.database,
            keys=ApiKeys(sessions),
            ingest=IngestJobs(sessions, runtime.jobs),
            jobs=runtime.jobs,
            sources=container.sources,
            door=container.waiting_door(runtime.jobs),
        )
    )


def signin_of(runtime: WebRuntime) -> SignIn:
    """The process's sign-in service (built once; the playground and the console pages share it)."""
    if runtime.signin is None:
        runtime.signin = build_signin(runtime.container)
    return runtime.signin


def signin_blueprint_for(runtime: WebRuntime) -> Blueprint:
    return signin_blueprint(signin_of(runtime))


def playground_blueprint_for(runtime: WebRuntime) -> Blueprint:
    # Viewers only: signed in (signin_blueprint_for), or anyone when the playground is public.
    container = runtime.container
    return playground_blueprint(container.engine, door=container.waiting_door(runtime.jobs), viewers_only=True)


def sources_page_blueprint_for(runtime: WebRuntime) -> Blueprint:
    return sources_page_blueprint(runtime.container.engine, runtime.container.sources, viewers_only=True)


def console_blueprint_for(runtime: WebRuntime) -> Blueprint:
    sessions = runtime.container.database.sessions
    # Signed-in people see their collections; an API key its own; a loopback request everything.
    return console_blueprint(sessions, console_viewer(ApiKeys(sessions)))


def metrics_blueprint_for(runtime: WebRuntime) -> Blueprint:
    # Set by bots/gunicorn_conf.py when gunicorn runs several worker processes.
    multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return metrics_blueprint(QueueDepth(runtime.container.database.engine), multiprocess_dir=multiprocess_dir)


# Add a feature to the web process by adding its blueprint factory here.
BLUEPRINTS: list[Callable[[WebRuntime], Blueprint | None]] = [
    health_blueprint,
    slack_blueprint_for,
    api_blueprint_for,
    signin_blueprint_for,
    playground_blueprint_for,
    sources_page_blueprint_for,
    console_blueprint_for,
    metrics_blueprint_for,
]


def create_app(
    settings: Settings | None = None, *, container: Container | None = None, start_worker: bool | None = None
) -> Flask:
    """The Flask app. ``start_worker`` defaults to the embedded default (DOCRAG_EMBEDDED_WORKERS
    and no DATABASE_URL): run job workers in this process."""
    if container is None:  # a real process (gunicorn), not a test handing in its own container
        settings = settings or load_settings()
        configure_logging(settings.log_level, json_lines=settings.log_json)
        container = build_container(settings, process="web")
    jobs = open_job_queue(container)
    lifecycle = container.lifecycle(jobs)
    runtime = WebRuntime(container=container, jobs=jobs, lifecycle=lifecycle, slack=build_slack_services(container, lifecycle))
    app = Flask("docrag")
    trust_proxies(app, container.settings.trusted_proxies)
    app.extensions[EXTENSION] = runtime
    for factory in BLUEPRINTS:
        blueprint = factory(runtime)
        if blueprint is not None:
            app.register_blueprint(blueprint)
    install_json_errors(app)
    runtime.worker = start_worker_if_embedded(container, lifecycle, runtime.slack, start_worker)
    log.info("web.started slack=%s embedded_worker=%s", runtime.slack is not None, runtime.worker is not None)
    return app


def trust_proxies(app: Flask, count: int) -> None:
    """Believe ``count`` reverse proxies about the client's address and scheme (DOCRAG_TRUSTED_PROXIES).

    werkzeug's ProxyFix takes the count-th X-Forwarded-For value from the right, the one our own
    outermost proxy appended, so whatever a client put in the header itself stays ignored. With no
    trusted proxy the headers are not read at all: the connection's peer is the client (and its
    rate-limit key in the playground)."""
    if count > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]


def runtime_of(app: Flask) -> WebRuntime:
    return app.extensions[EXTENSION]


def shutdown(app: Flask) -> None:
    """Finish in-flight Slack calls, stop the embedded worker, close the job queue."""
    runtime_of(app).close()


def start_worker_if_embedded(
    container: Container, lifecycle: Lifecycle, slack: SlackServices | None, start_worker: bool | None = None
) -> BackgroundWorker | None:
    """Job workers in this process: when asked, or on the embedded default (DOCRAG_EMBEDDED_WORKERS
    and no DATABASE_URL), where a separate worker process would be one more thing to run."""
    settings = container.settings
    wanted = start_worker if start_worker is not None else settings.embedded_workers and settings.uses_embedded_database
    if not wanted:
        return None
    return start_background_worker(container, lifecycle, slack, concurrency=EMBEDDED_CONCURRENCY)
