"""Answer quality without a language model: does the extract carry the decisive fact, and is "not covered" honest?

    python bench/answer_eval.py [--split dev|test|all] [--corpus NAME ...] [--failures] [--json]
    python bench/answer_eval.py --check-facts          # every fact occurs in its source file
    python bench/answer_eval.py --reference [BEIR_DIR]  # coverage of anthropic_docs' reference answers
    python bench/answer_eval.py --record FILE          # ask every question once, record what answers were decided on
    python bench/answer_eval.py --replay FILE [--split dev]  # re-decide the recording offline, in seconds

Question sets are ``bench/answers/NAME.jsonl``, one JSON object a line::

    {"id": "pytest-001", "question": "...", "answerable": true, "facts": ["--lf", "--last-failed"],
     "source": "how-to/cache.rst", "split": "dev"}

``NAME`` is a corpus of bench/corpus_cache.py; ``source`` is relative to its docs folder. Each
corpus is ingested once per run into a fresh embedded database through the normal folder ingestion
(real loaders and chunking, hashing embedder), then every question is asked through the same
composition root and ``Engine.ask`` the CLI's ``docrag ask`` uses, with no LLM configured.

Scoring (``--split`` picks the rows; ``dev`` is for tuning, ``test`` for reporting):

* fact found: an answerable question whose answer text contains ANY of its ``facts``, both sides
  lower-cased, Markdown emphasis and backticks removed and whitespace collapsed; an abstention
  never counts as a found fact;
* fact in top passage / in context (diagnostics of retrieval, not of the answer): the fact occurs in
  the first passage, or in any of the passages the answer is composed from (``context_passages``);
* abstained: the engine reported "not covered" (``Answer.grounded`` is False);
* answered-when-answerable: answerable questions that did not abstain; the error rates are
  abstained-when-answerable (the complement) and answered-when-should-abstain (unanswerable
  questions that got an answer).

``--record FILE`` runs the engine as usual over every split and writes, per question, the passages
the answer was composed from (with their heading paths and scores), the question's term statistics
(core/answers/evidence.py) and the answer given. ``--replay FILE`` re-decides each recorded question
with the current extract (core/answers/extractive.py) and "not covered" rule (``weak_evidence`` in
core/answers/pipeline.py), without a database, and says how many answers differ from the recorded
ones (0 on unchanged code). Retrieval is not re-run, so a replay measures the answerer only.

``--reference`` ingests ``corpus.jsonl`` of a BEIR folder as bench/retrieval_eval.py does, asks
each question of ``answers.json`` and measures how much of the reference answer (``correct_answer``)
the extract covers, with two figures per question, averaged (mean and median):

* term recall: the share of the reference's distinct content-word stems (lower-cased words of
  letters and digits, English stopwords removed, a light suffix-stripping stemmer) that occur
  among the extract's stems;
* sentence coverage: the share of the reference's sentences that have at least half of their
  content-word stems in the extract;
* new-term recall: term recall over the reference's stems that are not in the question, i.e. the
  part of the reference the asker did not already say (questions without such stems are left out).

An abstention scores what its text covers (usually nothing); the number of abstentions is printed.
Two figures keep the recall honest: the term recall of the question itself (reference answers repeat
the question's words, so an extract must beat merely echoing it), and the answers' mean length in
characters (a longer extract covers more words; recall has no length penalty).
The stemmer and stopwords here are the bench's own, so changing the answerer cannot change the ruler.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SETS_DIR = Path(__file__).resolve().parent / "answers"
DEFAULT_REFERENCE_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "anthropic_docs"
SPLITS = ("dev", "test", "all")
# Thread names are unique to a run, so a database kept between runs (DATABASE_URL) never gives a
# question the history of its previous run.
RUN = f"{time.time_ns():x}"


# --------------------------------------------------------------------------- question sets
@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answerable: bool
    facts: tuple[str, ...]
    source: str | None
    split: str


def load_set(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        try:
            questions.append(
                Question(row["id"], row["question"], bool(row["answerable"]), tuple(row["facts"]), row["source"], row["split"])
            )
        except KeyError as missing:
            raise SystemExit(f"{path.name}:{number}: missing field {missing}") from None
    return questions


def in_split(question: Question, split: str) -> bool:
    return split == "all" or question.split == split


def available_sets() -> list[str]:
    return sorted(p.stem for p in SETS_DIR.glob("*.jsonl"))


# --------------------------------------------------------------------------- scoring
_EMPHASIS = re.compile(r"`+|\*+|(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")


def normalise(text: str) -> str:
    """Lower-case, drop Markdown emphasis and code marks (``*x*``, ``_x_``, `` `x` ``), collapse whitespace.

    Underscores inside a word (``tmp_path``) are kept: they are part of the name, not emphasis.
    """
    return " ".join(_EMPHASIS.sub("", text).lower().split())


def fact_found(answer_text: str, facts: tuple[str, ...] | list[str]) -> bool:
    haystack = normalise(answer_text)
    return any(normalise(fact) and normalise(fact) in haystack for fact in facts)


@dataclass
class Outcome:
    """One question asked: what came back and how it scored."""

    question: Question
    abstained: bool
    found: bool  # answerable and the fact is in a non-abstaining answer
    text: str
    sources: list[str]
    retrieved_at: int | None = None  # 1-based rank of the first retrieved passage holding a fact, if any

    @property
    def correct(self) -> bool:
        return self.found if self.question.answerable else self.abstained


def score(question: Question, text: str, abstained: bool, sources: list[str], retrieved_at: int | None = None) -> Outcome:
    found = question.answerable and not abstained and fact_found(text, question.facts)
    return Outcome(question, abstained, found, text, sources, retrieved_at)


def first_passage_with_fact(passages, facts: tuple[str, ...]) -> int | None:
    """Where retrieval put the fact: the 1-based rank of the first passage (title, heading, text) holding one."""
    for rank, p in enumerate(passages, start=1):
        if fact_found(f"{p.title}\n{p.heading}\n{p.text}", facts):
            return rank
    return None


@dataclass
class Summary:
    questions: int = 0
    answerable: int = 0
    unanswerable: int = 0
    found: int = 0
    answered_answerable: int = 0
    abstained_unanswerable: int = 0
    retrieved_top: int = 0  # the fact is in the first passage
    retrieved_context: int = 0  # the fact is in one of the passages the answer is composed from

    def add(self, outcome: Outcome) -> None:
        self.questions += 1
        if outcome.question.answerable:
            self.answerable += 1
            self.found += outcome.found
            self.retrieved_top += outcome.retrieved_at == 1
            self.retrieved_context += outcome.retrieved_at is not None
            self.answered_answerable += not outcome.abstained
        else:
            self.unanswerable += 1
            self.abstained_unanswerable += outcome.abstained

    def rates(self) -> dict[str, float | None]:
        def share(part: int, whole: int) -> float | None:
            return part / whole if whole else None

        answered = share(self.answered_answerable, self.answerable)
        abstained = share(self.abstained_unanswerable, self.unanswerable)
        return {
            "fact_found": share(self.found, self.answerable),
            "fact_in_top_passage": share(self.retrieved_top, self.answerable),
            "fact_in_context": share(self.retrieved_context, self.answerable),
            "answered_when_answerable": answered,
            "abstained_when_unanswerable": abstained,
            "answered_when_should_abstain": None if abstained is None else 1 - abstained,
            "abstained_when_answerable": None if answered is None else 1 - answered,
        }


def summarise(outcomes: list[Outcome]) -> Summary:
    summary = Summary()
    for outcome in outcomes:
        summary.add(outcome)
    return summary


# --------------------------------------------------------------------------- fact check
def check_facts(corpus: str, questions: list[Question], docs: Path) -> list[str]:
    """Problems with a set: answerable rows whose facts are not in their source file, malformed rows."""
    problems = []
    seen: set[str] = set()
    for q in questions:
        where = f"{corpus}/{q.id}"
        if q.id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(q.id)
        if q.split not in ("dev", "test"):
            problems.append(f"{where}: split is {q.split!r}, not dev or test")
        if not q.answerable:
            if q.facts or q.source:
                problems.append(f"{where}: unanswerable rows have no facts and no source")
            continue
        if not q.facts or not q.source:
            problems.append(f"{where}: an answerable row needs facts and a source")
            continue
        path = docs / q.source
        if not path.is_file():
            problems.append(f"{where}: source {q.source} does not exist in {docs}")
            continue
        # Normalised as the scorer does, so a fact that passes here can be matched in an answer.
        text = normalise(path.read_text(encoding="utf-8", errors="replace"))
        for fact in q.facts:
            if not normalise(fact) or normalise(fact) not in text:
                problems.append(f"{where}: fact {fact!r} is not in {q.source}")
    return problems


# --------------------------------------------------------------------------- running the engine
EMBEDDER = "hashing"  # --embedder
# Exact vector search unless --ann: pgvector's HNSW graph is built differently on every run, so
# with it two runs of the same code gave different passages for 40 of 422 questions; without it, none.
VECTOR_INDEX_MIN_CHUNKS = 10**9


def build_container(database):
    """The CLI's composition root on a bench database: the --embedder (hashing by default), no LLM, no rate limits."""
    from bots.wiring import Container
    from core.config import Settings

    settings = Settings(
        _env_file=None,
        database_url="unused: the bench passes its own database",
        embedder=EMBEDDER,
        llm="extractive",
        rate_user_per_min=0,
        rate_channel_per_min=0,
        rate_workspace_per_hour=0,
        vector_index_min_chunks=VECTOR_INDEX_MIN_CHUNKS,
    )
    return Container(settings=settings, database=database)


def ask_all(container, collection: str, questions: list[Question], recording: list[dict] | None = None) -> list[Outcome]:
    """Ask each question; with ``recording``, also append what the answer was composed from (see --record)."""
    from core.types import SessionKey

    spy = _ComposeSpy(container.engine.pipeline) if recording is not None else None
    outcomes = []
    for q in questions:
        # A thread per question, as `docrag ask` without --thread: no history leaks between questions.
        key = SessionKey(platform="cli", workspace="local", channel="terminal", thread=f"eval-{q.id}-{RUN}", user="cli")
        answer = container.engine.ask(key, q.question, collection=collection)
        retrieved_at = None
        if spy is not None:
            recording.append(spy.row(q, answer, container.embedder.name))
            retrieved_at = first_passage_with_fact(spy.composed.found.passages, q.facts) if q.answerable else None
        elif q.answerable:  # the passages the answer was composed from, as the engine retrieves them
            limit = container.settings.context_passages  # the pipeline's own setting (PipelineOptions)
            passages = container.engine.search(q.question, collection=collection, limit=limit)
            retrieved_at = first_passage_with_fact(passages, q.facts)
        outcomes.append(score(q, answer.text, not answer.grounded, [c.source for c in answer.citations], retrieved_at))
    return outcomes


class _ComposeSpy:
    """Wraps the engine's ``pipeline.compose`` to keep the last Composed and the question's term
    statistics (core/answers/evidence.py), which are all the extract and "not covered" are decided on."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.composed = None
        self.statistics = None
        original = pipeline.compose

        def compose(question, history, collection_id, **kwargs):
            from core.answers import evidence

            self.composed = original(question, history, collection_id, **kwargs)
            with pipeline.sessions() as session:
                self.statistics = evidence.term_statistics(
                    session, self.composed.query, collection_id, self.composed.found.passages
                )
            return self.composed

        pipeline.compose = compose  # an instance attribute shadows the method for this container only

    def row(self, q: Question, answer, embedder: str) -> dict:
        found, stats = self.composed.found, self.statistics
        return {
            "id": q.id,
            "query": self.composed.query,
            "passages": [asdict(p) for p in found.passages],
            "best_similarity": found.best_similarity,
            "embedder": embedder,
            "statistics": None if stats is None else {
                "terms": list(stats.terms), "frequencies": stats.frequencies,
                "held": [sorted(h) for h in stats.held], "chunks": stats.chunks,
            },
            "answer": answer.text,  # the live answer, so a replay can check it reproduces it
            "grounded": answer.grounded,
        }


def replay_question(q: Question, row: dict) -> tuple[Outcome, bool]:
    """Re-decide one recorded question with the current answer code: (its outcome, same text as recorded)."""
    from core.answers.evidence import TermStatistics, from_statistics
    from core.answers.extractive import extractive_answer
    from core.answers.pipeline import CLOSEST_SOURCES, not_covered, weak_evidence
    from core.types import Passage

    passages = [Passage(**p) for p in row["passages"]]
    raw = row["statistics"]
    stats = None if raw is None else TermStatistics(
        tuple(raw["terms"]), raw["frequencies"], tuple(frozenset(h) for h in raw["held"]), raw["chunks"]
    )
    if not passages or weak_evidence(
        from_statistics(stats), row["best_similarity"], row["embedder"], query=row["query"], passages=passages
    ):
        answer = not_covered(passages[:CLOSEST_SOURCES])
        text, grounded, sources = answer.text, False, [c.source for c in answer.citations]
    else:
        text, cited = extractive_answer(row["query"], passages)
        grounded, sources = True, [passages[n - 1].source for n in cited]
    retrieved_at = first_passage_with_fact(passages, q.facts) if q.answerable else None
    return score(q, text, not grounded, sources, retrieved_at), text == row["answer"]


@dataclass
class CorpusRun:
    corpus: str
    outcomes: list[Outcome]
    documents: int
    chunks: int
    failed: int
    ingest_s: float
    ask_s: float
    summary: Summary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarise(self.outcomes)


def run_corpus(database, corpus: str, questions: list[Question], recording: list[dict] | None = None) -> CorpusRun:
    from bench.corpus_cache import ensure_corpus, include_root
    from core.search.term_stats import refresh_stale_postings

    docs = ensure_corpus(corpus)
    container = build_container(database)
    started = time.perf_counter()
    wider = include_root(corpus)
    report = container.ingestor.ingest([str(docs)], collection=corpus, include_root=str(wider) if wider else None)
    # A large collection's postings lists are built by the worker about a minute after an ingest,
    # and searches before that rank common words differently: measure the state users query, not
    # a race with the worker (without this, two runs gave different passages for 19 of 120 questions).
    refresh_stale_postings(database.sessions)
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    outcomes = ask_all(container, corpus, questions, recording)
    return CorpusRun(corpus, outcomes, report.added + report.updated + report.unchanged, report.chunks,
                     len(report.failed), ingest_s, time.perf_counter() - started)


def record(path: Path, sets: dict[str, list[Question]]) -> list[CorpusRun]:
    """Ask every question of every split once and write what each answer was composed from to ``path``."""
    from bench._common import fresh_database, machine

    database = fresh_database()
    runs, corpora = [], {}
    for corpus, questions in sets.items():
        rows: list[dict] = []
        run = run_corpus(database, corpus, questions, rows)
        runs.append(run)
        corpora[corpus] = {"documents": run.documents, "chunks": run.chunks, "failed": run.failed,
                           "ingest_s": round(run.ingest_s, 1), "questions": rows}
    path.write_text(json.dumps({"recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                "machine": machine(), "corpora": corpora}), encoding="utf-8")
    return runs


def replay(path: Path, sets: dict[str, list[Question]], split: str) -> tuple[list[CorpusRun], int]:
    """The recorded questions re-decided with the current answer code; also how many answers changed."""
    recorded = json.loads(path.read_text(encoding="utf-8"))["corpora"]
    runs, changed = [], 0
    for corpus, questions in sets.items():
        if corpus not in recorded:
            raise SystemExit(f"{path} has no recording of {corpus}")
        data = recorded[corpus]
        rows = {row["id"]: row for row in data["questions"]}
        outcomes = []
        started = time.perf_counter()
        for q in questions:
            if not in_split(q, split):
                continue
            if q.id not in rows:
                raise SystemExit(f"{path} has no recording of {q.id}: record again")
            outcome, same = replay_question(q, rows[q.id])
            outcomes.append(outcome)
            changed += not same
        runs.append(CorpusRun(corpus, outcomes, data["documents"], data["chunks"], data["failed"], 0.0,
                              time.perf_counter() - started))
    return runs, changed


def recorded_embedder(path: Path) -> str:
    """The embedder a recording was made with (its rows name it), for the table's heading."""
    corpora = json.loads(path.read_text(encoding="utf-8"))["corpora"].values()
    kinds = ("hashing", "sentence-transformers", "openai")
    names = {next((k for k in kinds if row["embedder"].startswith(k)), row["embedder"])
             for data in corpora for row in data["questions"]}
    return ", ".join(sorted(names)) or EMBEDDER


# --------------------------------------------------------------------------- printing
RATE_COLUMNS = [
    ("fact found", "fact_found"),
    ("fact in top passage", "fact_in_top_passage"),
    ("fact in context", "fact_in_context"),
    ("answered|answerable", "answered_when_answerable"),
    ("abstained|unanswerable", "abstained_when_unanswerable"),
    ("ERR answered|should abstain", "answered_when_should_abstain"),
    ("ERR abstained|answerable", "abstained_when_answerable"),
]


def summary_row(name: str, summary: Summary) -> list[object]:
    rates = summary.rates()
    cells: list[object] = [name, f"{summary.questions} ({summary.answerable}+{summary.unanswerable})"]
    cells += ["-" if rates[key] is None else f"{100 * rates[key]:.0f}%" for _, key in RATE_COLUMNS]
    return cells


def print_failures(run: CorpusRun) -> None:
    for o in run.outcomes:
        if o.correct:
            continue
        q = o.question
        expected = f"facts {list(q.facts)} ({q.source})" if q.answerable else "expected: not covered"
        verdict = "abstained" if o.abstained else "answered"
        where = "" if not q.answerable else f"; fact in passage {o.retrieved_at}" if o.retrieved_at else "; fact not retrieved"
        print(f"\n[{q.id}] {q.question}\n  {expected}; {verdict}{where}")
        print("  answer: " + " ".join(o.text.split())[:300])
        for source in o.sources:
            print(f"    - {source}")


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in ["bench/answer_eval.py", *sys.argv[1:]])


# --------------------------------------------------------------------------- reference answers
_REF_WORD = re.compile(r"[a-z0-9]+")
_REF_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_REF_STOPWORDS = frozenset(
    "a an the and or but if of to in on for with by at from as is are was were be been being do does did "
    "how what when where which who whom why can could should would will shall may might must i you we they "
    "he she it its this that these those my your our their me us them there here not no so than then too "
    "very about into over under up out any all some each more most other such only own same just also "
    "have has had s t e g etc via".split()
)


def _ref_stem(word: str) -> str:
    """Plural, -ing, -ed and a final e off: 'cases' and 'case', 'rotated' and 'rotating' meet."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 1 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 2 and word.endswith("e") else word


def content_stems(text: str) -> set[str]:
    return {_ref_stem(w) for w in _REF_WORD.findall(normalise(text)) if w not in _REF_STOPWORDS}


def reference_coverage(reference: str, extract: str) -> tuple[float, float]:
    """(term recall, sentence coverage) of ``reference`` by ``extract``; see the module docstring."""
    have = content_stems(extract)
    wanted = content_stems(reference)
    recall = len(wanted & have) / len(wanted) if wanted else 1.0
    sentences = [content_stems(s) for s in _REF_SENTENCE.split(reference)]
    sentences = [s for s in sentences if s]
    covered = sum(len(s & have) >= 0.5 * len(s) for s in sentences)
    return recall, covered / len(sentences) if sentences else 1.0


def new_term_recall(reference: str, question: str, extract: str) -> float | None:
    """Term recall over the reference's stems that are not in the question: the answer's own content."""
    wanted = content_stems(reference) - content_stems(question)
    return len(wanted & content_stems(extract)) / len(wanted) if wanted else None


def run_reference(database, beir: Path) -> dict:
    from bench.retrieval_eval import corpus_items
    from core.types import SessionKey

    container = build_container(database)
    started = time.perf_counter()
    report = container.ingestor.ingest_items(corpus_items(beir), collection="reference")
    ingest_s = time.perf_counter() - started
    rows = json.loads((beir / "answers.json").read_text(encoding="utf-8"))
    recalls, coverages, echoes, news, lengths, abstained = [], [], [], [], [], 0
    started = time.perf_counter()
    for row in rows:
        key = SessionKey(platform="cli", workspace="local", channel="terminal", thread=f"ref-{row['id']}-{RUN}", user="cli")
        answer = container.engine.ask(key, row["question"], collection="reference")
        abstained += not answer.grounded
        recall, coverage = reference_coverage(row["correct_answer"], answer.text)
        recalls.append(recall)
        coverages.append(coverage)
        echoes.append(reference_coverage(row["correct_answer"], row["question"])[0])
        lengths.append(len(answer.text))
        new = new_term_recall(row["correct_answer"], row["question"], answer.text)
        if new is not None:
            news.append(new)
    return {
        "set": beir.name,
        "questions": len(rows),
        "abstained": abstained,
        "term_recall_mean": statistics.fmean(recalls),
        "term_recall_median": statistics.median(recalls),
        "sentence_coverage_mean": statistics.fmean(coverages),
        "sentence_coverage_median": statistics.median(coverages),
        "question_echo_recall_mean": statistics.fmean(echoes),
        "new_term_recall_mean": statistics.fmean(news),
        "new_term_recall_median": statistics.median(news),
        "answer_chars_mean": round(statistics.fmean(lengths)),
        "documents": report.added,
        "chunks": report.chunks,
        "ingest_s": round(ingest_s, 1),
        "ask_s": round(time.perf_counter() - started, 1),
    }


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, default="test")
    parser.add_argument("--corpus", action="append", help="a set in bench/answers/ (repeatable; default: all)")
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "sentence-transformers"],
                        help="the embedder the corpora are ingested and searched with (default: hashing)")
    parser.add_argument("--ann", action="store_true",
                        help="search large collections through their approximate vector index, as deployed "
                             "(figures then move between runs); default: exact vector search, repeatable")
    parser.add_argument("--failures", action="store_true", help="print every miss with the answer and its sources")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check-facts", action="store_true", help="verify the sets' facts against their sources")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="ask every question of every split once and record the passages and evidence to FILE")
    parser.add_argument("--replay", type=Path, metavar="FILE",
                        help="re-decide the recorded questions offline with the current extract and abstention code")
    parser.add_argument("--reference", nargs="?", type=Path, const=DEFAULT_REFERENCE_DIR, default=None,
                        metavar="BEIR_DIR", help="score coverage of answers.json's reference answers")
    args = parser.parse_args()
    global EMBEDDER, VECTOR_INDEX_MIN_CHUNKS
    EMBEDDER = args.embedder
    if args.ann:
        from core.config import Settings
        VECTOR_INDEX_MIN_CHUNKS = Settings.model_fields["vector_index_min_chunks"].default

    if args.reference is not None:
        from bench._common import fresh_database, machine

        result = run_reference(fresh_database(), args.reference)
        if args.json:
            print(json.dumps(result))
            return
        print(f"{result['set']}: {result['questions']} questions, {result['documents']} documents, "
              f"{result['chunks']} chunks (ingest {result['ingest_s']}s, asking {result['ask_s']}s); "
              f"{result['abstained']} abstained")
        print(f"reference term recall:       mean {result['term_recall_mean']:.3f}, median {result['term_recall_median']:.3f}")
        print(f"reference sentence coverage: mean {result['sentence_coverage_mean']:.3f}, "
              f"median {result['sentence_coverage_median']:.3f}")
        print(f"new-term recall (stems not in the question): mean {result['new_term_recall_mean']:.3f}, "
              f"median {result['new_term_recall_median']:.3f}")
        print(f"floor: the question alone has term recall {result['question_echo_recall_mean']:.3f} (mean); "
              f"answers average {result['answer_chars_mean']} characters")
        print(f"machine: {machine()}\ncommand: {command_line()}")
        return

    corpora = args.corpus or available_sets()
    unknown = [c for c in corpora if not (SETS_DIR / f"{c}.jsonl").is_file()]
    if unknown:
        raise SystemExit(f"no question set for {', '.join(unknown)} in {SETS_DIR}")
    sets = {c: load_set(SETS_DIR / f"{c}.jsonl") for c in corpora}

    if args.check_facts:
        from bench.corpus_cache import ensure_corpus

        problems = [p for c, qs in sets.items() for p in check_facts(c, qs, ensure_corpus(c))]
        for problem in problems:
            print(problem)
        counts = ", ".join(
            f"{c}: {sum(q.answerable for q in qs)} answerable + {sum(not q.answerable for q in qs)} unanswerable "
            f"({sum(q.split == 'dev' for q in qs)} dev)" for c, qs in sets.items()
        )
        print(f"{len(problems)} problems; {counts}")
        sys.exit(1 if problems else 0)

    from bench._common import fresh_database, machine, table

    changed = None
    if args.record:
        runs = record(args.record, sets)
        runs = [CorpusRun(r.corpus, [o for o in r.outcomes if in_split(o.question, args.split)], r.documents,
                          r.chunks, r.failed, r.ingest_s, r.ask_s) for r in runs]
    elif args.replay:
        runs, changed = replay(args.replay, sets, args.split)
        EMBEDDER = recorded_embedder(args.replay)
    else:
        database = fresh_database()
        runs = [run_corpus(database, c, [q for q in qs if in_split(q, args.split)]) for c, qs in sets.items()]
    overall = summarise([o for run in runs for o in run.outcomes])
    if args.json:
        print(json.dumps({
            "split": args.split,
            "machine": machine(),
            "corpora": {r.corpus: {**asdict(r.summary), **r.summary.rates(), "chunks": r.chunks,
                                   "ingest_s": round(r.ingest_s, 1)} for r in runs},
            "overall": {**asdict(overall), **overall.rates()},
        }))
        return
    for run in runs:
        print(f"{run.corpus}: {run.documents} documents, {run.chunks} chunks, {run.failed} failed; "
              f"ingest {run.ingest_s:.1f}s, {len(run.outcomes)} questions in {run.ask_s:.1f}s")
    headers = ["corpus", "questions (ans+unans)"] + [name for name, _ in RATE_COLUMNS]
    rows = [summary_row(r.corpus, r.summary) for r in runs] + [summary_row("overall", overall)]
    source = f"replayed from {args.replay} ({changed} answers differ from the recorded ones)" if args.replay else ("live, " + ("approximate vector index (--ann)" if args.ann else "exact vector search"))
    print(f"\nsplit {args.split}; extractive answers (no LLM), {EMBEDDER} embedder; {source}")
    print(table(headers, rows))
    print(f"machine: {machine()}\ncommand: {command_line()}")
    if args.failures:
        for run in runs:
            print_failures(run)


if __name__ == "__main__":
    main()
