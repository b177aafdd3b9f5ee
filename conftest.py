"""What holds for every test in the tree: nothing is read from beside the checkout.

A fresh clone must pass its tests with nothing next to it, so a test (or a fixture)
that opens a file in the checkout's parent directory but outside the checkout (a
sibling folder of fixtures, say) fails, naming the file. Files anywhere else (the
system, temporary directories, the virtualenv) are not this check's business.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent
_BESIDE = str(ROOT.parent) + os.sep
_INSIDE = str(ROOT) + os.sep
_opened_beside: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not args:
        return
    path = args[0]
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):  # a file descriptor
        return
    full = os.path.abspath(path)
    # A file that is not there is not read: looking for one (a workspace root above a
    # project, say) reads nothing from beside the checkout.
    if (
        full.startswith(_BESIDE)
        and not (full + os.sep).startswith(_INSIDE)
        and os.path.exists(full)
    ):
        _opened_beside.append(full)


def pytest_configure(config: pytest.Config) -> None:
    if not getattr(sys, "_mastra_admin_audit", False):
        sys.addaudithook(_audit)
        sys._mastra_admin_audit = True  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _reads_only_the_checkout() -> Iterator[None]:
    start = len(_opened_beside)
    yield
    opened = _opened_beside[start:]
    if opened:
        pytest.fail(
            "the test read outside the checkout (copy what it needs into the repository): "
            + ", ".join(sorted(set(opened))[:5]),
            pytrace=False,
        )
