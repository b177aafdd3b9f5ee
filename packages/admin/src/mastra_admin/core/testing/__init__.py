"""Conformance suites and test doubles, published so that third-party adapters run
exactly what MastraAdmin's own adapters run.

Each suite is a pytest class with ``__test__ = False``; an adapter subclasses it,
sets ``__test__ = True`` and overrides the suite's fixture that builds the adapter::

    from mastra_admin.core.testing import RunnerConformance

    class TestMyRunner(RunnerConformance):
        __test__ = True

        @pytest.fixture
        async def runner(self, tmp_path):
            yield MyRunner(...)

Importing this package needs pytest (``pip install mastra-admin[testing]``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FakeRouter",
    "FakeRunner",
    "FakeSource",
    "FileStorageConformance",
    "InMemoryAdminStorage",
    "LocalDnsServer",
    "ObservabilityQueryConformance",
    "RouterConformance",
    "RunnerConformance",
    "SourceConformance",
    "StorageConformance",
]

_WHERE = {
    "StorageConformance": "storage",
    "RunnerConformance": "runner",
    "RouterConformance": "router",
    "SourceConformance": "source",
    "FileStorageConformance": "file_storage",
    "ObservabilityQueryConformance": "observability",
    "InMemoryAdminStorage": "memory",
    "FakeRunner": "fakes",
    "FakeRouter": "fakes",
    "FakeSource": "fakes",
    "LocalDnsServer": "dns",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
