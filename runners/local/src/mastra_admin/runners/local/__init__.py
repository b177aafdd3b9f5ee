"""Builds Mastra projects and runs their servers as local processes (runner ``local``).

``LocalProcessRunner`` copies a project into ``{builds_dir}/{build_id}/`` through the
configured ``ProjectSourceProvider``, installs it with its package manager, runs
``mastra build``, and starts ``node .mastra/output/index.mjs`` on a free port in its
own session, with exactly the environment of the deployment contract.
"""

from mastra_admin.runners.local._layout import BuildLayout
from mastra_admin.runners.local._ports import PortAllocator, port_is_free
from mastra_admin.runners.local._runner import SERVER_ENV_ALLOW, LocalProcessRunner, mask_secrets
from mastra_admin.runners.local._settings import LocalRunnerSettings
from mastra_admin.runners.local.version import __version__

__all__ = [
    "SERVER_ENV_ALLOW",
    "BuildLayout",
    "LocalProcessRunner",
    "LocalRunnerSettings",
    "PortAllocator",
    "__version__",
    "mask_secrets",
    "port_is_free",
]
