"""Reliability tests run real engines too: share the engine fixtures."""

from tests.engine.conftest import registry, start_engine

__all__ = ["registry", "start_engine"]
