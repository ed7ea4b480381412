"""Answers learned from resolved threads: found by the next person, told apart, expiring, removable."""
from datetime import datetime, timedelta, timezone

import pytest

from core.ingest.learned import (
    Learned,
    ResolvedThread,
    expire_learned,
    learn,
    list_learned,
    remove_learned,
)
from core.tenancy.channels import set_learn_from_threads
from core.types import SessionKey
from tests.builders import write_docs

CONFIRMED = datetime(2026, 12, 7, 9, 30, tzinfo=timezone.utc)
PERMALINK = "https://acme.slack.com/archives/C1/p1765099800000100"


def resolved(*, private=False, channel="C1", thread="1765099800.000100"):
    return ResolvedThread(
        key=SessionKey(platform="slack", workspace="T1", channel=channel, thread=thread, user="U7"),
        channel_name="deploys",
        private=private,
        question="How do I roll back the billing service after a bad deploy?",
        answer="Run `deployctl rollback billing --to previous`; it restores the last green release in two minutes.",
        permalink=PERMALINK,
        confirmed_by="Ada",
        confirmed_at=CONFIRMED,
    )


@pytest.fixture
def docs(container, tmp_path):
    write_docs(tmp_path / "docs", {"intro.md": "# Billing\n\nThe billing service sends invoices every month.\n"})
    container.ingestor.ingest([str(tmp_path / "docs")], collection="default")
    return container


def ask(container, text):
    key = SessionKey(platform="slack", workspace="T1", channel="C2", thread="other", user="U9")
    return container.engine.ask(key, text)


def test_a_confirmed_answer_is_found_by_the_next_person_and_cited_as_a_thread(docs):
    assert learn(docs.ingestor, resolved(), collection="default", grounded=True) is Learned.LEARNED
    answer = ask(docs, "How can I roll back billing after a bad deploy?")
    assert "deployctl rollback billing" in answer.text
    learned = [c for c in answer.citations if c.source == PERMALINK]
    assert learned and learned[0].title.startswith("Answered in #deploys on 2026-12-07")


def test_private_channels_turned_off_channels_and_uncovered_answers_are_not_learned(docs):
    assert learn(docs.ingestor, resolved(private=True), collection="default", grounded=True) is Learned.PRIVATE
    assert learn(docs.ingestor, resolved(), collection="default", grounded=False) is Learned.NOT_COVERED
    with docs.database.sessions.begin() as session:
        set_learn_from_threads(session, "slack", "T1", "C1", False)
    assert learn(docs.ingestor, resolved(), collection="default", grounded=True) is Learned.TURNED_OFF
    assert list_learned(docs.database.sessions) == []


def test_confirming_a_thread_twice_keeps_one_learned_document(docs):
    learn(docs.ingestor, resolved(), collection="default", grounded=True)
    learn(docs.ingestor, resolved(), collection="default", grounded=True)
    [only] = list_learned(docs.database.sessions)
    assert only.confirmed_by == "Ada" and only.link == PERMALINK


def test_learned_answers_expire_and_can_be_removed_but_documents_cannot_be_removed_as_learned(docs):
    learn(docs.ingestor, resolved(), collection="default", grounded=True, ttl_days=30)
    learn(docs.ingestor, resolved(thread="2"), collection="default", grounded=True, ttl_days=365)
    sessions = docs.database.sessions
    assert expire_learned(sessions, now=CONFIRMED + timedelta(days=29)) == 0
    assert expire_learned(sessions, now=CONFIRMED + timedelta(days=31)) == 1
    [kept] = list_learned(sessions)
    assert kept.expires_at.startswith("2027-12-07")
    assert remove_learned(sessions, kept.id) and list_learned(sessions) == []
    assert "invoices every month" in ask(docs, "When does billing send invoices?").text  # the docs stay


def test_operators_list_remove_and_turn_off_learning_from_the_command_line(docs, database_url, monkeypatch):
    from click.testing import CliRunner

    from bots.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    learn(docs.ingestor, resolved(), collection="default", grounded=True)
    runner = CliRunner()
    listed = runner.invoke(main, ["learned", "list"])
    assert listed.exit_code == 0 and "Answered in #deploys" in listed.output and PERMALINK in listed.output
    [row] = list_learned(docs.database.sessions)
    assert runner.invoke(main, ["learned", "remove", str(row.id)]).exit_code == 0
    refused = runner.invoke(main, ["learned", "remove", str(row.id)])
    assert refused.exit_code != 0 and "No learned answer" in refused.output
    off = runner.invoke(main, ["learned", "channel", "C1", "--workspace", "T1", "--off"])
    assert off.exit_code == 0
    assert learn(docs.ingestor, resolved(), collection="default", grounded=True) is Learned.TURNED_OFF


def test_learned_answers_belong_to_the_workspace_s_learned_source_and_go_with_it(docs):
    learn(docs.ingestor, resolved(), collection="default", grounded=True)
    learn(docs.ingestor, resolved(thread="2"), collection="default", grounded=True)
    [source] = [s for s in docs.sources.list() if s.kind == "learned"]
    assert source.documents == 2 and source.name == "learned from slack T1"
    docs.sources.remove(source.id)
    assert list_learned(docs.database.sessions) == []
    assert "invoices every month" in ask(docs, "When does billing send invoices?").text  # the docs stay


def test_the_learning_job_run_twice_for_one_confirmation_stores_one_document(docs):
    """A retried job (a worker died after storing, before finishing) must not duplicate the answer."""
    from core.ingest.learned_jobs import Confirmation, LearningRunner, ThreadFacts, now_iso
    from core.ingest.learned_threads import Target

    answer = ask(docs, "When does billing send invoices?")
    assert answer.grounded and answer.message_id is not None
    facts = ThreadFacts("support", False, "https://discord.com/channels/1/2", "Ada")
    confirmation = Confirmation(Target("slack", "T1", "C2", answer_id=answer.message_id), "U8", "thumbs_up",
                                now_iso(), facts)
    runner = LearningRunner(docs.database.sessions, lambda: docs.ingestor, {})
    replayed = Confirmation.from_json(confirmation.as_json())  # as the queue hands it back
    assert runner.run(replayed) is Learned.LEARNED
    assert runner.run(replayed) is Learned.LEARNED
    [only] = list_learned(docs.database.sessions)
    assert only.title.startswith("Answered in #support on ") and only.confirmed_by == "Ada"
    assert only.link == "https://discord.com/channels/1/2"


def test_a_confirmation_from_another_workspace_never_reaches_this_one_s_answer(docs):
    from core.ingest.learned_jobs import Confirmation, LearningRunner, ThreadFacts, now_iso
    from core.ingest.learned_threads import Target

    answer = ask(docs, "When does billing send invoices?")
    facts = ThreadFacts("support", False, "https://example.invalid/t", "Eve")
    stranger = Confirmation(Target("slack", "T_OTHER", "C2", answer_id=answer.message_id), "U8", "thumbs_up",
                            now_iso(), facts)
    assert LearningRunner(docs.database.sessions, lambda: docs.ingestor, {}).run(stranger) is None
    assert list_learned(docs.database.sessions) == []
