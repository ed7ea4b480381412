"""/metrics: Prometheus text with questions, answers, stage latencies, refusals and queue depth."""
from __future__ import annotations

import io
import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from core.questions.metrics import PROMETHEUS, REGISTRY, exposition, platform_api_error
from core.types import SessionKey
from tests.conftest import REPO
from tests.web.conftest import COLLECTION


def scrape(web) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = web.client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_an_ask_is_counted_by_platform_with_stage_latencies(web):
    before = scrape(web)
    assert web.ask("how do I rotate my API key?").status_code == 200
    after = scrape(web)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("docrag_questions_total", platform="api") == 1
    assert grew("docrag_answers_total", platform="api", grounded="true") == 1
    assert grew("docrag_stage_seconds_count", stage="retrieval") == 1
    assert grew("docrag_stage_seconds_count", stage="total") == 1


def test_refusals_errors_and_queue_depth_are_exposed(make_web):
    web = make_web(rate_user_per_min=1)
    web.ask("how do I rotate my API key?")
    before = value(scrape(web), "docrag_rate_limited_total", platform="api", scope="you")
    assert web.ask("how do I ingest a folder?").status_code == 429
    after = scrape(web)
    assert value(after, "docrag_rate_limited_total", platform="api", scope="you") == before + 1

    web.client.post(f"/api/v1/collections/{COLLECTION}/documents", headers=web.auth(),
                    data={"file": (io.BytesIO(b"Queued."), "queued.txt")}, content_type="multipart/form-data")
    samples = scrape(web)
    assert value(samples, "docrag_queue_depth", queue="ingest") == 1
    assert ("docrag_queue_depth", (("queue", "answers"),)) in samples

    platform_api_error("slack")
    assert value(scrape(web), "docrag_platform_api_errors_total", platform="slack") >= 1


def test_a_replayed_answer_is_counted_once(container):
    """Jobs may run twice; the engine then returns the stored answer, which is not a new answer."""
    engine = container.engine
    container.ingestor.ingest_items([], collection="default")
    question_id = engine.accept(SessionKey("test", "w", "c", "t", "u"), "anything at all?")

    def answers() -> float:
        return sum(REGISTRY.get_sample_value("docrag_answers_total", {"platform": "test", "grounded": g}) or 0
                   for g in ("true", "false"))

    engine.answer(question_id)
    counted = answers()
    engine.answer(question_id)
    assert answers() == counted


def test_metrics_observe_the_engine_without_replacing_it(container):
    """Counting is an observer of the engine (no subclass, no copy of its collaborators)."""
    engine = container.engine
    assert type(engine).__name__ == "Engine" and PROMETHEUS in engine.observers.observers
    engine.observers.add(PROMETHEUS)  # adding it again does not count twice
    assert engine.observers.observers.count(PROMETHEUS) == 1


def test_values_from_several_processes_are_merged(tmp_path):
    """Under gunicorn each worker writes its values to PROMETHEUS_MULTIPROC_DIR; a scrape adds them up."""
    script = "from core.questions.metrics import QUESTIONS; QUESTIONS.labels('api').inc()"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=REPO)
    body, _ = exposition(multiprocess_dir=str(tmp_path))
    samples = {(s.name, tuple(s.labels.items())): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples[("docrag_questions_total", (("platform", "api"),))] == 2
