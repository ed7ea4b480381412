"""``GET /metrics`` in Prometheus' text format (scrape it from inside your network)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from core.questions.metrics import exposition


def metrics_blueprint(*collectors: Any, multiprocess_dir: str | None = None) -> Blueprint:
    """``collectors`` are added to DocRag's own metrics (e.g. ``QueueDepth``); ``multiprocess_dir`` is
    ``PROMETHEUS_MULTIPROC_DIR`` when several gunicorn workers write their values there."""
    blueprint = Blueprint("metrics", __name__)

    @blueprint.get("/metrics")
    def metrics() -> Response:
        body, content_type = exposition(*collectors, multiprocess_dir=multiprocess_dir)
        return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    return blueprint
