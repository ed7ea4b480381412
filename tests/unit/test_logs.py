"""Log lines are JSON with the question's id, and never carry a secret."""
import io
import json
import logging

from bots.logs import JsonFormatter, redact
from core.observability.logcontext import question_context


def test_json_lines_carry_the_question_id_and_hide_tokens():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("docrag.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with question_context(42):
            logger.info("slack.posted token=%s auth=%s", "xoxb-123-456-abcdef", "Bearer sk-abcdefghijklmnop")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["question_id"] == "42" and first["level"] == "info"
    assert "xoxb" not in first["event"] and "sk-abc" not in first["event"]
    assert "question_id" not in second


def test_redact_masks_every_token_shape():
    text = "xapp-1-A-2 xoxp-9-9 sk-proj-ABCDEFGH12345 Bot MTAxMjM0NTY3ODkwMTIzNDU2Nzg.abc"
    assert redact(text).count("[redacted]") == 4
