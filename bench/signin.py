"""What sign-in costs a playground request: the session lookup and the workspace's collections,
on every page a signed-in person opens.

    python bench/signin.py [--requests 300]

Times GET / (the playground) and GET /docs/<collection>/<page> through the real app
(bots.web.create_app, Flask's test client, no network), for an anonymous visitor of a public
playground and for a signed-in Slack member, and the viewer lookup alone. Prints a table.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import fresh_database, machine, table  # noqa: E402
from bots.wiring import Container  # noqa: E402
from core.config import Settings  # noqa: E402
from core.tenancy.collections import get_collection, map_workspace  # noqa: E402
from core.tenancy.viewer_access import readable_collections  # noqa: E402
from core.tenancy.web_sessions import Identity, WebSessions  # noqa: E402
from tests.builders import SAMPLE_DOCS, write_docs  # noqa: E402

TEAM = "T0BENCH"


def timed(call, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    n = parser.parse_args().requests
    import bots.web

    database = fresh_database()
    docs = write_docs(Path(tempfile.mkdtemp(prefix="docrag-bench-docs-")), SAMPLE_DOCS)
    settings = Settings(_env_file=None, database_url=database.url, default_collection="docs", llm="extractive",
                        playground_public=True, web_listen="127.0.0.1:8000",
                        signin_slack_client_id="bench", signin_slack_client_secret="bench")  # type: ignore[call-arg]
    container = Container(settings=settings, database=database)
    container.ingestor.ingest([str(docs)], collection="docs")
    with database.sessions.begin() as session:
        map_workspace(session, "slack", TEAM, get_collection(session, "docs"))
    token = WebSessions(database.sessions, lifetime=timedelta(hours=1)).open(Identity("slack", "U0B", "Bench", (TEAM,)))
    app = bots.web.create_app(container=container, start_worker=False)

    anonymous, member = app.test_client(), app.test_client()
    member.set_cookie("docrag_session", token)
    assert anonymous.get("/").status_code == 200 and "Signed in as Bench" in member.get("/").get_data(as_text=True)
    sessions = WebSessions(database.sessions, lifetime=timedelta(hours=1))

    def lookup() -> None:
        stored = sessions.find(token)
        with database.sessions() as session:
            readable_collections(session, "slack", stored.identity.workspaces, "docs")

    rows = []
    for name, call in (
        ("GET / anonymous (public playground)", lambda: anonymous.get("/")),
        ("GET / signed in", lambda: member.get("/")),
        ("GET /docs/docs/keys.md anonymous", lambda: anonymous.get("/docs/docs/keys.md")),
        ("GET /docs/docs/keys.md signed in", lambda: member.get("/docs/docs/keys.md")),
        ("viewer lookup alone (session + collections)", lookup),
    ):
        timed(call, 20)  # warm-up
        rows.append([name, *timed(call, n)])
    bots.web.shutdown(app)
    print(f"machine: {machine()}; {n} requests each, sequential, Flask test client, embedded PostgreSQL")
    print(table(["request", "p50 ms", "p95 ms"], rows))


if __name__ == "__main__":
    main()
