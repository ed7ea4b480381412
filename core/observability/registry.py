"""The process's Prometheus registry, shared by every module that exports metrics.

A module of its own so that low-level modules (the database pool) can register metrics without
importing the engine; :mod:`core.questions.metrics` exposes it.
"""
from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry()
