"""Finding the program of a build step on this machine (the commands themselves are
the core's ``build_steps``)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from mastra_admin.core.errors import BuildFailed

__all__ = ["resolve_executable"]


def resolve_executable(step: str, argv: Sequence[str], path: str | None) -> list[str]:
    """``argv`` with its program resolved on ``path``; ``BuildFailed`` naming the
    missing tool when it is not installed."""
    if not argv:
        raise BuildFailed(step, f"the {step} command is empty")
    program = argv[0]
    if "/" in program:
        if not Path(program).is_file():
            raise BuildFailed(step, f"{program} does not exist", details={"tool": program})
        return list(argv)
    found = shutil.which(program, path=path)
    if found is None:
        raise BuildFailed(
            step,
            f"{program} is not installed (no `{program}` on PATH); install it on the "
            f"admin's machine or set the project's {step} command",
            details={"tool": program},
        )
    return [found, *argv[1:]]
