"""The platform on the git source, as an operator sets it up: ``mastra-admin serve`` with
``[source] provider = "git"``, a private repository served over smart HTTP by the real
``git http-backend``, and webhook deliveries shaped as GitHub documents them.

A project connects the repository with a token and a webhook secret; a deploy is
pinned to a commit (its id, message and author recorded); a push webhook deploys the
pushed commit; a pull request from a fork gets a preview of its own, without the
project's secrets, which disappears when the pull request is closed; a rollback names
a commit; a force-push and a repository that disappears fail their builds clearly; bad
signatures, replays, unknown repositories and branches no deployment follows are each
answered as such; and the token is nowhere: not in answers, logs or files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
import pytest

from mastra_admin.sources.git.testing import commit, force_push

from ._git import SECRET, TOKEN, GitPlatform, git, project_files, served_git_platform
from ._platform import ServedPlatform, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def git_platform() -> Iterator[GitPlatform]:
    with served_git_platform() as made:
        yield made


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def agent_instructions(platform: ServedPlatform, deployment: dict[str, Any]) -> str:
    host = urlparse(str(deployment["public_url"])).hostname
    assert host is not None
    response = platform.routed(host, "/api/agents")
    assert response.status_code == 200, response.text
    return str(response.json()["weather"]["instructions"])


def server_environment(platform: ServedPlatform, deployment_id: str) -> dict[str, str]:
    [server] = [
        s
        for s in platform.get(f"/api/deployments/{deployment_id}/servers")
        if s["stopped_at"] is None
    ]
    raw = Path(f"/proc/{server['process_id']}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def test_connect_push_preview_rollback_and_hostile_deliveries(git_platform: GitPlatform) -> None:
    platform, repo = git_platform.platform, git_platform.repo
    first_sha = git(repo, "rev-parse", "main")
    assert platform.get("/api/sources") == {
        "type": "git",
        "connects": True,
        "webhook_path": "/api/webhooks/git",
    }
    team = platform.post("/api/teams", {"name": "Search"}, expect=201)

    # A wrong token is refused when connecting, with a clear message and no token in it.
    refused = platform.request(
        "POST",
        f"/api/teams/{team['id']}/projects",
        json={
            "name": "Weather",
            "source_type": "git",
            "source": {
                "url": git_platform.url,
                "credential": {"type": "https_token", "token": "ghs_wrong_token_000000"},
            },
        },
        expect=422,
    )
    assert refused["error"]["code"] == "git_repository_unreadable"
    assert "ghs_wrong_token" not in json.dumps(refused)

    project = platform.post(
        f"/api/teams/{team['id']}/projects",
        {
            "name": "Weather",
            "source_type": "git",
            "source": {
                "url": git_platform.url,
                "credential": {"type": "https_token", "token": TOKEN},
                "webhook_secret": SECRET,
            },
        },
        expect=201,
    )
    assert "secrets" not in project["source_config"]
    assert TOKEN not in json.dumps(project)
    assert SECRET not in json.dumps(project)
    assert project["source_config"]["url"] == git_platform.url
    pid_path = f"/api/projects/{project['id']}"
    platform.request("PUT", f"{pid_path}/env", json={"key": "OPENAI_API_KEY", "value": "sk-e2e"})
    platform.request(
        "PUT", f"{pid_path}/env", json={"key": "FORECAST_UNITS", "value": "c", "is_secret": False}
    )
    production = platform.post(f"{pid_path}/deployments", {"type": "production"}, expect=201)

    # A deploy is pinned to the branch's commit, recorded with its message and author.
    first = platform.deploy(production["id"])
    assert first["commit_sha"] == first_sha
    assert first["commit_message"] == "first commit"
    assert first["commit_author"] == "Test <test@example.com>"
    assert f"main is commit {first_sha[:12]}" in platform.build_log(first["id"])
    production = platform.get(f"/api/deployments/{production['id']}")
    assert agent_instructions(platform, production) == "v1: sunny"

    # A push to main deploys the pushed commit.
    second_sha = commit(repo, project_files(git_platform.root, "v2: rainy"), "rain today")
    delivery = str(uuid.uuid4())
    pushed = git_platform.deliver(
        "push", git_platform.push_payload(second_sha, first_sha), delivery=delivery
    )
    assert pushed.status_code == 202, pushed.text
    outcome = pushed.json()
    assert outcome["outcome"] == "queued"
    assert outcome["projects"] == [project["id"]]
    [build_id] = outcome["builds"]
    second = platform.wait_build(build_id)
    assert second["status"] == "succeeded", platform.build_log(build_id)
    assert second["trigger"] == "webhook"
    assert (second["commit_sha"], second["commit_message"]) == (second_sha, "rain today")
    assert agent_instructions(platform, production) == "v2: rainy"

    # The same delivery again is a replay; a wrong secret, an unknown repository, a
    # branch no deployment follows and a malformed body are each answered as such.
    replayed = git_platform.deliver(
        "push", git_platform.push_payload(second_sha, first_sha), delivery=delivery
    )
    assert (replayed.status_code, error_code(replayed)) == (409, "webhook_replayed")
    forged = git_platform.deliver(
        "push", git_platform.push_payload(second_sha, first_sha), secret="not-the-secret-x"
    )
    assert (forged.status_code, error_code(forged)) == (401, "webhook_bad_signature")
    elsewhere = git_platform.push_payload(second_sha, first_sha)
    elsewhere["repository"]["clone_url"] = "https://github.com/someone/else.git"
    unknown = git_platform.deliver("push", elsewhere)
    assert (unknown.status_code, error_code(unknown)) == (404, "webhook_unknown_repository")
    feature = git_platform.deliver(
        "push", git_platform.push_payload(second_sha, first_sha, branch="feature")
    )
    assert feature.status_code == 202
    assert feature.json()["outcome"] == "ignored"
    assert "feature" in feature.json()["reason"]
    broken = git_platform.deliver("push", {}, raw=b'{"ref": "refs/heads/main", ')
    assert broken.status_code == 422, broken.text
    assert len(platform.get(f"/api/deployments/{production['id']}/builds")["items"]) == 2

    # A pull request from a fork: a preview of its head, without the project's secrets.
    third_sha = commit(repo, project_files(git_platform.root, "v3: snowy"), "snow please")
    git(repo, "update-ref", "refs/pull/7/head", third_sha)
    git(repo, "update-ref", "refs/heads/main", second_sha, third_sha)
    opened = git_platform.deliver("pull_request", git_platform.pull_payload("opened", 7, third_sha))
    assert opened.status_code == 202, opened.text
    assert opened.json()["outcome"] == "queued"
    [preview_build] = opened.json()["builds"]
    [preview_id] = opened.json()["deployments"]
    built = platform.wait_build(preview_build)
    assert built["status"] == "succeeded", platform.build_log(preview_build)
    assert built["commit_sha"] == third_sha
    preview = platform.get(f"/api/deployments/{preview_id}")
    assert (preview["type"], preview["branch"]) == ("preview", "pull/7/head")
    assert preview["secrets_withheld"] is True
    assert preview["expires_at"]
    assert agent_instructions(platform, preview) == "v3: snowy"
    environment = server_environment(platform, preview_id)
    assert environment.get("FORECAST_UNITS") == "c"
    assert "OPENAI_API_KEY" not in environment
    assert server_environment(platform, production["id"]).get("OPENAI_API_KEY") == "sk-e2e"
    [preview_server] = platform.get(f"/api/deployments/{preview_id}/servers")

    # Closing it stops and removes the preview.
    closed = git_platform.deliver("pull_request", git_platform.pull_payload("closed", 7, third_sha))
    assert closed.status_code == 202, closed.text
    assert closed.json()["outcome"] == "removed", closed.text
    platform.request("GET", f"/api/deployments/{preview_id}", expect=404)
    wait_for(
        "the preview's server to stop",
        lambda: not psutil.pid_exists(preview_server["process_id"]),
        timeout=30,
    )

    # A rollback may name the commit: the kept output of its build is started again.
    back = platform.post(
        f"/api/deployments/{production['id']}/rollback",
        {"commit_sha": first_sha[:10]},
        expect=202,
    )
    assert back["trigger"] == "rollback"
    assert back["artifact_build_id"] == first["id"]
    assert platform.wait_build(back["id"])["status"] == "succeeded"
    assert agent_instructions(platform, production) == "v1: sunny"

    # A force-push drops a pushed commit before it was built: building it fails, saying why.
    dropped_sha = commit(repo, project_files(git_platform.root, "v3b: hail"), "hail")
    force_push(repo, project_files(git_platform.root, "v4: foggy"))
    gone = platform.post(
        f"/api/deployments/{production['id']}/deploy", {"ref": dropped_sha}, expect=202
    )
    failed = platform.wait_build(gone["id"])
    assert failed["status"] == "failed"
    assert "force-pushed" in failed["error_message"], failed

    # A repository that disappears fails the next build clearly.
    shutil.rmtree(repo)
    lost = platform.post(f"/api/deployments/{production['id']}/deploy", expect=202)
    failed = platform.wait_build(lost["id"])
    assert failed["status"] == "failed"
    assert "does not exist" in failed["error_message"], failed
    # The server still serves the last good build.
    assert agent_instructions(platform, production) == "v1: sunny"

    # The token is nowhere: build logs, the platform's own output, any file it wrote.
    for build in platform.get(f"/api/deployments/{production['id']}/builds")["items"]:
        assert TOKEN not in platform.build_log(build["id"])
    assert TOKEN not in "".join(platform.output)
    assert SECRET not in "".join(platform.output)
    found = subprocess.run(
        ["grep", "-rl", "--binary-files=text", "-F", TOKEN, str(platform.data_dir)],
        capture_output=True,
        text=True,
    )
    assert found.stdout == "", found.stdout
