"""Builds Mastra projects in build containers and runs each server in a container of
its own, on Docker Engine (runner ``docker``).

``DockerRunner`` installs and builds a project in containers of a Node.js base image
(never on the platform's machine), commits the build output as an image per build, and
runs one non-root, resource-limited container per server on its deployment's own
network, published on the host's loopback.
"""

from mastra_admin.runners.docker._engine import DockerEngine, EngineError, EngineUnavailable
from mastra_admin.runners.docker._runner import LABEL, DockerRunner
from mastra_admin.runners.docker._settings import DockerRunnerSettings
from mastra_admin.runners.docker.version import __version__

__all__ = [
    "LABEL",
    "DockerEngine",
    "DockerRunner",
    "DockerRunnerSettings",
    "EngineError",
    "EngineUnavailable",
    "__version__",
]
