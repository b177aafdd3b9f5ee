"""A platform on the git source with a private repository served over smart HTTP by the
real ``git http-backend``, and webhook deliveries shaped as GitHub documents them
(``sources/git/tests/payloads``)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mastra_admin.core.testing.projects import write_mastra_project
from mastra_admin.sources.git.testing import GitHttpServer, make_repository

from ._platform import ServedPlatform, new_root

__all__ = [
    "REPOSITORY",
    "SECRET",
    "TOKEN",
    "GitPlatform",
    "git",
    "project_files",
    "served_git_platform",
]

PAYLOADS = Path(__file__).resolve().parent.parent / "sources" / "git" / "tests" / "payloads"
TOKEN = "ghs_e2eRepositoryToken0123456789abcdef"
SECRET = "whsec-e2e-0123456789abcdef"
REPOSITORY = "weather"


def project_files(root: Path, instructions: str) -> dict[str, str | bytes]:
    """The files of a deployable fixture project whose agent has ``instructions``."""
    folder = root / f"files-{uuid.uuid4().hex[:8]}"
    write_mastra_project(
        folder, name="weather-agent", agents={"weather": instructions}, flush_interval_ms=200
    )
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    shutil.rmtree(folder)
    return dict(files)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class GitPlatform:
    platform: ServedPlatform
    server: GitHttpServer
    repo: Path
    root: Path

    @property
    def url(self) -> str:
        return self.server.url(REPOSITORY)

    def deliver(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        secret: str = SECRET,
        delivery: str | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return httpx.post(
            f"{self.platform.url}/api/webhooks/git",
            content=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/e2e",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                "X-Hub-Signature-256": f"sha256={signature}",
            },
            timeout=30,
        )

    def push_payload(self, sha: str, before: str, branch: str = "main") -> dict[str, Any]:
        payload: dict[str, Any] = json.loads((PAYLOADS / "push.json").read_text())
        payload["ref"] = f"refs/heads/{branch}"
        payload["before"], payload["after"] = before, sha
        payload["deleted"] = False
        payload["head_commit"] = {**(payload.get("head_commit") or {}), "id": sha}
        payload["repository"]["clone_url"] = self.url
        return payload

    def pull_payload(self, action: str, number: int, sha: str) -> dict[str, Any]:
        name = "pull_request.opened.json" if action == "opened" else "pull_request.closed.json"
        payload: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
        payload["action"] = action
        payload["number"] = number
        pull = payload["pull_request"]
        pull["number"] = number
        pull["head"]["sha"] = sha
        pull["head"]["ref"] = "patch-1"
        # From a fork: the head repository is someone else's.
        pull["head"]["repo"] = copy.deepcopy(pull["base"]["repo"])
        pull["head"]["repo"]["full_name"] = "forker/weather"
        payload["repository"]["clone_url"] = self.url
        pull["base"]["repo"]["clone_url"] = self.url
        return payload


@contextlib.contextmanager
def served_git_platform() -> Iterator[GitPlatform]:
    """A platform on the git source and a private repository served over smart HTTP."""
    root = new_root()
    server = GitHttpServer(root / "served", token=TOKEN)
    server.start()
    repo = make_repository(server.root, REPOSITORY, project_files(root, "v1: sunny"))
    (root / "projects").mkdir()
    platform = ServedPlatform(
        root,
        root / "projects",
        env={
            "MASTRA_ADMIN_SOURCE__PROVIDER": "git",
            "MASTRA_ADMIN_SOURCE__ALLOW_INSECURE_HTTP_HOSTS": '["127.0.0.1"]',
            "MASTRA_ADMIN_SOURCE__ALLOW_PRIVATE_ADDRESSES": "true",
        },
    )
    try:
        platform.start()
        yield GitPlatform(platform, server, repo, root)
    finally:
        server.close()
        platform.close()
