"""gunicorn settings for the web process, shaped by Slack's rule: acknowledge within 3 seconds.

    gunicorn -c bots/gunicorn_conf.py 'bots.web:create_app()'

Requests only verify, claim and store (milliseconds of database work); answers are produced by
job workers. So the web process needs many cheap concurrent slots (threads), not long timeouts:
a slow client or a burst must never leave Slack's request waiting for a free worker.
"""
import os
import shutil
import tempfile

# Hosting platforms (Heroku-style) say where to listen in $PORT; otherwise stay on loopback.
bind = f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000"

worker_class = "gthread"
# One process per core keeps Python's GIL from serialising everything; WEB_CONCURRENCY overrides.
workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, min(4, os.cpu_count() or 1)))
threads = 8  # each waits mostly on PostgreSQL: cheap, and a burst of Slack retries finds a free slot

timeout = 30  # a worker silent this long is restarted (a request normally takes milliseconds)
graceful_timeout = 20  # on restart, in-flight requests and after-ack Slack calls get this long to finish
keepalive = 5  # Slack reuses connections between deliveries

# Workers build their own database pools and threads after the fork: neither survives a fork.
preload_app = False
max_requests = 0  # no recycling: it would interrupt the in-process job workers of the embedded default

accesslog = None
errorlog = "-"
loglevel = "warning"


def worker_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Let in-flight Slack calls finish and stop the embedded job worker cleanly."""
    app = getattr(worker, "wsgi", None)
    if app is not None and "docrag" in getattr(app, "extensions", {}):
        from bots.web import shutdown

        shutdown(app)


def post_fork(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Request threads mostly wait on PostgreSQL, while job threads (embedded default) use the CPU.
    With Python's default 5 ms GIL switch interval a busy job thread delays every wake-up of a
    request thread; 1 ms keeps acknowledgements quick at a small cost in job throughput."""
    import sys

    from prometheus_client import values

    sys.setswitchinterval(0.001)
    # `docrag serve` may have imported prometheus_client before the metrics folder existed.
    values.ValueClass = values.get_value_class()


def on_starting(server):
    """Each worker process writes its metrics to a shared folder; /metrics merges them."""
    path = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="docrag-metrics-"))
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    # Whether the playground may be public depends on where it listens (bots/web_signin.py).
    os.environ["DOCRAG_WEB_LISTEN"] = ",".join(server.cfg.bind)


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
