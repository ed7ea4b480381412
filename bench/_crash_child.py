"""A DocRag process for bench/crash.py, killed with SIGKILL at random moments.

    python bench/_crash_child.py web PORT     # the web process, with job workers inside
    python bench/_crash_child.py web-only PORT  # the web process, answers left to a worker
    python bench/_crash_child.py worker       # python -m bots.worker
    python bench/_crash_child.py discord      # the Discord gateway, with job workers inside
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    mode = sys.argv[1]
    if mode in ("web", "web-only"):
        from werkzeug.serving import run_simple

        from bots.web import create_app

        app = create_app(start_worker=mode == "web")
        run_simple("127.0.0.1", int(sys.argv[2]), app, threaded=True)
    elif mode == "worker":
        from bots.worker import main as worker

        worker([])
    elif mode == "discord":
        import asyncio

        from bots.discord_gateway import _run_until_signal, build_runtime, point_discord_at
        from bots.logs import configure_logging
        from bots.wiring import build_container
        from core.config import load_settings

        settings = load_settings()
        configure_logging(settings.log_level, json_lines=settings.log_json)
        point_discord_at(settings)
        runtime = build_runtime(build_container(settings, process="discord"), start_worker=True)
        asyncio.run(_run_until_signal(runtime.bot, "bench-token"))


if __name__ == "__main__":
    main()
