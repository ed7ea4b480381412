"""Suggested prompts for the assistant: questions many people asked, then the collection's topics."""
from core.questions.suggestions import MIN_ASKERS, suggested_prompts
from core.types import SessionKey
from tests.builders import write_docs

DOCS = {
    "deploys.md": "# Deploying\n\n" + "\n\n".join(
        f"## Step {i}\n\n" + " ".join(f"Deploy step {i} runs release script part {j}." for j in range(60)) for i in range(6)
    ),
    "keys.md": "# API keys\n\nKeys are created with the apikey command.\n\n## Rotating\n\nRevoke, then create a key.\n",
    "changelog.md": "# Changelog\n\n" + "\n\n".join(f"## 1.{i}\n\nFixed bug {i}." for i in range(9)),
}


def ask(container, user, text, thread):
    key = SessionKey(platform="slack", workspace="T1", channel="C1", thread=thread, user=user)
    return container.engine.ask(key, text)


def test_topics_come_from_the_largest_real_pages_when_nobody_has_asked_yet(container, tmp_path):
    container.ingestor.ingest([str(write_docs(tmp_path / "docs", DOCS))], collection="default")
    prompts = suggested_prompts(container.database.sessions, "default")
    assert [p.title for p in prompts] == ["Deploying", "API keys"]  # the change log is not a topic
    assert prompts[0].message == "What does the documentation say about Deploying?"


def test_a_question_many_people_asked_comes_first_but_one_persons_question_is_never_shown(container, tmp_path):
    container.ingestor.ingest([str(write_docs(tmp_path / "docs", DOCS))], collection="default")
    for n in range(MIN_ASKERS):
        ask(container, f"U{n}", "How do I rotate API keys?", thread=f"t{n}")
    ask(container, "U9", "How do I deploy the secret project?", thread="private")
    prompts = suggested_prompts(container.database.sessions, "default")
    assert prompts[0].message == "How do I rotate API keys?"
    assert all("secret project" not in p.message for p in prompts)
    assert suggested_prompts(container.database.sessions, "no-such-collection") == []
