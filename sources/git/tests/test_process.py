"""Running git: deadlines and stop requests kill the whole process group; output is capped
and masked."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import pytest

from mastra_admin.core.errors import MastraAdminError
from mastra_admin.sources.git import GitTimeout, HttpsToken
from mastra_admin.sources.git._process import Masker, git_environment, run_git

from .conftest import Spawned

GIT = shutil.which("git") or "git"
# A git alias runs through sh, so git, sh and sleep make a small process tree.
SLEEPY = ["-c", "alias.nap=!sleep 30; :", "nap"]


async def test_a_deadline_kills_git_and_its_children(
    spawned: list[Spawned], group_members: Callable[[int], list[int]]
) -> None:
    started = asyncio.get_running_loop().time()
    with git_environment() as environment, pytest.raises(GitTimeout, match=r"0\.5 s"):
        await run_git(GIT, SLEEPY, environment=environment, timeout_s=0.5, what="git nap")

    assert asyncio.get_running_loop().time() - started < 5
    assert group_members(spawned[0].pid) == []


async def test_an_error_from_the_watch_stops_git(
    spawned: list[Spawned], group_members: Callable[[int], list[int]]
) -> None:
    calls = 0

    async def watch() -> MastraAdminError | None:
        nonlocal calls
        calls += 1
        return MastraAdminError("enough") if calls == 2 else None

    with git_environment() as environment, pytest.raises(MastraAdminError, match="enough"):
        await run_git(GIT, SLEEPY, environment=environment, timeout_s=30, watch=watch)

    assert calls == 2
    assert group_members(spawned[0].pid) == []


async def test_output_is_capped_and_stderr_masked() -> None:
    token = HttpsToken(token="tok-abcdef123456")
    args = ["-c", "alias.say=!printf '%0200000d'; echo tok-abcdef123456 >&2", "say"]
    with git_environment(None, None) as environment:
        environment.masker = Masker(token.secrets())
        result = await run_git(GIT, args, environment=environment, timeout_s=30, stdout_limit=1000)

    assert result.returncode == 0
    assert len(result.stdout) == 1000
    assert "tok-abcdef123456" not in result.stderr
    assert "***" in result.stderr
