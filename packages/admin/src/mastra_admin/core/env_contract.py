"""The environment a deployed server is given (DESIGN §6): the variable names, and the
core's part of the values. The one owner of the contract: the deployments service,
the runners and the runner conformance suite all take the names from here.
"""

from __future__ import annotations

__all__ = [
    "COLLECTOR_ENDPOINT_VARS",
    "COLLECTOR_PATH",
    "COLLECTOR_TOKEN_VARS",
    "CORE_VARS",
    "RUNNER_VARS",
    "collector_url",
    "core_env",
]

# --- the core's part (``BuildContext.env``) ----------------------------------------

PROJECT_ID = "MASTRA_PROJECT_ID"
DEPLOYMENT_ID = "MASTRA_DEPLOYMENT_ID"
TELEMETRY_DISABLED = "MASTRA_TELEMETRY_DISABLED"
CLOUD_ACCESS_TOKEN = "MASTRA_CLOUD_ACCESS_TOKEN"
CLOUD_TRACES_ENDPOINT = "MASTRA_CLOUD_TRACES_ENDPOINT"
PLATFORM_ACCESS_TOKEN = "MASTRA_PLATFORM_ACCESS_TOKEN"
"""Read first by ``MastraPlatformExporter``, CloudExporter's successor."""
PLATFORM_OBSERVABILITY_ENDPOINT = "MASTRA_PLATFORM_OBSERVABILITY_ENDPOINT"

COLLECTOR_TOKEN_VARS = (CLOUD_ACCESS_TOKEN, PLATFORM_ACCESS_TOKEN)
"""Both carry the deployment's collector token (a secret: masked in logs)."""
COLLECTOR_ENDPOINT_VARS = (CLOUD_TRACES_ENDPOINT, PLATFORM_OBSERVABILITY_ENDPOINT)
"""Both carry the deployment's collector URL (``collector_url``)."""
CORE_VARS = frozenset(
    {PROJECT_ID, DEPLOYMENT_ID, TELEMETRY_DISABLED, *COLLECTOR_TOKEN_VARS, *COLLECTOR_ENDPOINT_VARS}
)
"""What the core adds to a project's env vars (the collector pair only while the
collector is on)."""

# --- the runner's part (added when it starts the server) ----------------------------

PORT = "PORT"
HOST = "MASTRA_HOST"
LISTEN_FD = "MASTRA_LISTEN_FD"
"""A listening socket handed to a server that runs in a network namespace of its own."""
TRACES_TARGET_DIR = "MASTRA_CLOUD_TRACES_TARGET_DIR"
LOGS_TARGET_DIR = "MASTRA_RUNNER_LOGS_TARGET_DIR"

RUNNER_VARS = frozenset({PORT, HOST, LISTEN_FD, TRACES_TARGET_DIR, LOGS_TARGET_DIR})
"""What a runner adds to the context's env, and nothing else of its own."""

COLLECTOR_PATH = "/api/collector/{deployment_id}/spans/publish"
"""The collector's traces path; the exporter derives the logs, metrics, scores and
feedback URLs by replacing its ``spans/publish`` suffix."""


def collector_url(base_url: str, deployment_id: str) -> str:
    """The traces URL given to a deployed server (``COLLECTOR_ENDPOINT_VARS``)."""
    return base_url + COLLECTOR_PATH.format(deployment_id=deployment_id)


def core_env(
    *,
    project_id: str,
    deployment_id: str,
    collector_token: str | None = None,
    collector_endpoint: str | None = None,
) -> dict[str, str]:
    """The core's variables for one deployment; the collector pair (token and URL
    under both their names) only when both are given."""
    env = {PROJECT_ID: project_id, DEPLOYMENT_ID: deployment_id, TELEMETRY_DISABLED: "1"}
    if collector_token is not None and collector_endpoint is not None:
        env.update(dict.fromkeys(COLLECTOR_TOKEN_VARS, collector_token))
        env.update(dict.fromkeys(COLLECTOR_ENDPOINT_VARS, collector_endpoint))
    return env
