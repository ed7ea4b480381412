"""The console as a documentation owner uses it: what was asked, what failed, one trace, the export,
and never another tenant's questions."""
from __future__ import annotations

import csv
import io

import pytest
from flask import Flask

from adapters.web.console import console_blueprint, console_viewer
from core.tenancy.apikeys import ApiKeys
from core.console.gaps import refresh_gaps
from core.errors import RateLimited
from core.types import SessionKey
from tests.builders import write_docs
from tests.web.conftest import COLLECTION

COVERED = "How do I rotate my API key?"
UNCOVERED = "How do I deploy the helm chart on kubernetes?"


def alice(thread: str = "t1", workspace: str = "T1") -> SessionKey:
    return SessionKey("slack", workspace, "C1", thread, "alice")


@pytest.fixture
def console(web):
    app = Flask("console-test")
    sessions = web.container.database.sessions
    app.register_blueprint(console_blueprint(sessions, console_viewer(ApiKeys(sessions))))
    web.extra["console"] = app.test_client()
    return web


def ask(web, question: str, key: SessionKey | None = None):
    return web.container.engine.ask(key or alice(), question, collection=COLLECTION)


def test_the_overview_counts_doors_outcomes_and_feedback_in_svg_without_javascript(console):
    answered = ask(console, COVERED)
    ask(console, UNCOVERED, SessionKey("cli", "local", "cli", "x", "bob"))
    console.container.engine.record_feedback(answered.message_id, platform="slack", user_id="carol", score=-1)

    page = console.extra["console"].get("/console/")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "<script" not in html and "<svg" in html
    assert "2 questions" in html
    assert "slack" in html and "cli" in html
    assert "0 👍, 1 👎" in html


def test_a_trace_shows_the_query_passages_scores_answer_feedback_and_timings(console):
    answered = ask(console, COVERED)
    console.container.engine.record_feedback(answered.message_id, platform="slack", user_id="carol", score=1)
    listing = console.extra["console"].get("/console/questions").get_data(as_text=True)
    assert COVERED.replace("'", "&#39;") in listing

    html = console.extra["console"].get("/console/questions/1").get_data(as_text=True)

    assert "Standalone query" in html and "rotate my API key" in html
    assert "API keys" in html  # the retrieved passage's document
    assert "Rotate" in html  # the answer
    assert "👍" in html and "total_ms" in html
    assert "carol" not in html  # who gave feedback is not shown


def test_a_key_sees_only_its_collections(console, tmp_path):
    other_docs = write_docs(tmp_path / "other", {"secret.md": "# Payroll\n\nSalaries are paid on the 25th.\n"})
    console.container.ingestor.ingest([str(other_docs)], collection="payroll")
    ask(console, COVERED)
    console.container.engine.ask(alice("t2"), "When are salaries paid?", collection="payroll")
    client = console.extra["console"]
    headers = console.auth()  # a key scoped to the docs collection

    listing = client.get("/console/questions", headers=headers).get_data(as_text=True)
    export = client.get("/console/questions.csv", headers=headers).get_data(as_text=True)

    assert "salaries" not in listing.lower() and "salaries" not in export.lower()
    assert client.get("/console/questions/2", headers=headers).status_code == 404
    assert client.get("/console/questions/2?collection=payroll", headers=headers).status_code == 404
    assert "Payroll" not in client.get("/console/documents", headers=headers).get_data(as_text=True)
    assert client.get("/console/questions/2").status_code == 200  # the operator on this machine sees all


def test_nobody_off_this_machine_gets_in_without_a_key(console):
    client = console.extra["console"]
    client.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert client.get("/console/").status_code == 403
    assert client.get("/console/", headers={"Authorization": "Bearer drk_forged"}).status_code == 403
    assert client.get("/console/", headers=console.auth()).status_code == 200


def test_the_csv_export_lists_each_question_with_its_outcome(console):
    ask(console, COVERED)
    ask(console, "=HYPERLINK(\"http://evil\") what about kubernetes helm?", alice("t3"))

    rows = list(csv.DictReader(io.StringIO(console.extra["console"].get("/console/questions.csv").get_data(as_text=True))))

    assert [r["outcome"] for r in rows] == ["answered", "not_covered"]
    assert rows[0]["question"] == COVERED and rows[0]["door"] == "slack"
    assert rows[1]["question"].startswith("'=")  # stays text in a spreadsheet


def test_rate_limited_questions_are_counted(make_web):
    web = make_web(rate_user_per_min=1)
    app = Flask("console-test")
    sessions = web.container.database.sessions
    app.register_blueprint(console_blueprint(sessions, console_viewer(ApiKeys(sessions))))
    ask(web, COVERED)
    with pytest.raises(RateLimited):
        ask(web, COVERED, alice("t9"))

    html = app.test_client().get("/console/").get_data(as_text=True)

    assert "<td>rate_limited</td><td>1</td><td>50.0%</td>" in html


def test_documents_show_citations_votes_and_the_never_cited(console):
    answered = ask(console, COVERED)
    console.container.engine.record_feedback(answered.message_id, platform="slack", user_id="carol", score=1)

    html = console.extra["console"].get("/console/documents").get_data(as_text=True)
    cited, never = html.split("Never cited")

    assert "API keys</td><td>docs</td><td>1</td><td>1</td><td>0</td>" in cited
    assert "Rate limits" in never and "Ingesting documents" in never


def test_knowledge_gaps_group_unanswered_questions_with_counts_and_examples(console):
    for n, question in enumerate([
        "How do I deploy the helm chart on kubernetes?",
        "Which kubernetes helm chart values deploy the bot?",
        "Deploying with a helm chart to a kubernetes cluster",
        "Can I export answers to a PDF report?",
    ]):
        ask(console, question, alice(f"g{n}"))
    with console.container.database.sessions() as session:
        from core.storage.models import Collection
        import sqlalchemy as sa
        collection_id = session.scalar(sa.select(Collection.id).where(Collection.name == COLLECTION))

    assert refresh_gaps(console.container.database.sessions, console.container.embedder, collection_id) == 4
    html = console.extra["console"].get("/console/gaps").get_data(as_text=True)

    assert "4 questions" in html
    assert "asked 3×" in html and "kubernetes" in html


def test_a_changed_vote_replaces_the_first_in_every_count(console):
    answered = ask(console, COVERED)
    engine = console.container.engine
    engine.record_feedback(answered.message_id, platform="slack", user_id="carol", score=1)
    engine.record_feedback(answered.message_id, platform="slack", user_id="carol", score=-1)
    engine.record_feedback(answered.message_id, platform="slack", user_id="dave", score=-1)

    overview = console.extra["console"].get("/console/").get_data(as_text=True)
    documents = console.extra["console"].get("/console/documents").get_data(as_text=True)

    assert "0 👍, 2 👎" in overview
    assert "API keys</td><td>docs</td><td>1</td><td>0</td><td>2</td>" in documents
