"""MastraAdmin's local project source: finds Mastra projects in folders on this machine
and copies them into build directories.

    from mastra_admin.sources.local import LocalProjectSource

    source = LocalProjectSource(base_paths=["~/agents"])
    projects = await source.list_projects()
    root = await source.get_project_path(projects[0], Path("/tmp/builds/b1"))
"""

from mastra_admin.sources.local._copy import CopyStats
from mastra_admin.sources.local._detector import MastraProjectDetector, ProjectMetadata
from mastra_admin.sources.local._provider import LocalProjectSource, project_id_for
from mastra_admin.sources.local._settings import (
    ALWAYS_EXCLUDED,
    LocalSourceSettings,
    default_base_paths,
)
from mastra_admin.sources.local.version import __version__

__all__ = [
    "ALWAYS_EXCLUDED",
    "CopyStats",
    "LocalProjectSource",
    "LocalSourceSettings",
    "MastraProjectDetector",
    "ProjectMetadata",
    "__version__",
    "default_base_paths",
    "project_id_for",
]
