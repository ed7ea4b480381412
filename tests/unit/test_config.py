"""Settings: validated once, errors name the variable and never echo secrets."""
import pytest

from core.config import Settings, load_settings
from core.errors import ConfigurationError


def test_defaults_run_offline_on_the_embedded_database(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    settings = load_settings()
    assert settings.uses_embedded_database
    assert settings.embedder == "hashing"
    assert not settings.llm_enabled


def test_invalid_value_names_the_variable_and_the_problem(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCRAG_RATE_USER_PER_MIN", "lots")
    monkeypatch.setenv("DOCRAG_EMBEDDER", "word2vec")
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    message = str(error.value)
    assert "DOCRAG_RATE_USER_PER_MIN" in message and "DOCRAG_EMBEDDER" in message


def test_env_file_is_read_and_secrets_are_not_printed(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-supersecretvalue123\nDOCRAG_LLM_MODEL=local-model\n")
    settings = load_settings()
    assert settings.llm_enabled and settings.llm_model == "local-model"
    assert "sk-supersecret" not in repr(settings) and "sk-supersecret" not in str(settings.model_dump())


def test_llm_can_be_forced_off_even_with_a_key(tmp_path):
    settings = Settings(_env_file=None, openai_api_key="sk-x", llm="extractive")
    assert not settings.llm_enabled
