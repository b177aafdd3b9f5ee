"""An example third-party runner for MastraAdmin: local processes under limits.

Every install, build and server command runs under ``prlimit`` (open files, no core
dumps) and ``nice``; servers may get a heap cap. Select it with
``[runner] provider = "limited"``.
"""

from __future__ import annotations

from mastra_admin.runners.limited._runner import LimitedProcessRunner
from mastra_admin.runners.limited._settings import LimitedRunnerSettings
from mastra_admin.runners.limited.version import __version__

__all__ = ["LimitedProcessRunner", "LimitedRunnerSettings", "__version__"]
