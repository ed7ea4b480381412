"""Queueing a job on an unreachable database is the same "temporarily unavailable" as any query."""
import pytest
from procrastinate.exceptions import ConnectorException

from core.storage.faults import DatabaseUnavailable
from core.storage.queue import queue_reachable


def test_a_queue_that_cannot_reach_postgresql_raises_database_unavailable():
    with pytest.raises(DatabaseUnavailable) as caught:
        with queue_reachable():
            try:
                raise OSError("terminating connection due to administrator command")
            except OSError as cause:
                raise ConnectorException("Database error.") from cause
    assert "administrator command" in caught.value.reason
    assert caught.value.reference  # what the user's 503 or apology names


def test_other_errors_pass_through_untouched():
    with pytest.raises(ValueError):
        with queue_reachable():
            raise ValueError("a bug, not an outage")
