"""Webhook deliveries: GitHub and Gitea payloads read into repository events, malformed
ones refused with a reason, and signatures checked against the project's secret."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.errors import InvalidInput, PayloadTooLarge
from mastra_admin.core.models import SOURCE_SECRETS_KEY, Project, Team
from mastra_admin.core.source import PullRequest, RepositoryEvent
from mastra_admin.core.testing.memory import InMemoryAdminStorage
from mastra_admin.sources.git import GitProjectSource, GitSourceSettings
from mastra_admin.sources.git.testing import GitHttpServer, make_repository

from .conftest import register

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "It's a Secret to Everybody"
KEY = "github.com/acme/weather-agent"


def body_of(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(body_of(name))
    return loaded


def github(event: str, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958") -> dict[str, str]:
    return {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "content-type": "application/json",
    }


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> GitProjectSource:
    return GitProjectSource(
        GitSourceSettings(),
        storage=InMemoryAdminStorage(),
        encryption=AesGcmEncryption({"k1": AesGcmEncryption.generate_key()}, "k1"),
        cache_dir=tmp_path / "cache",
    )


def project_with(source: GitProjectSource, secret: str | None) -> Project:
    secrets = {} if secret is None else {"webhook_secret": source.encryption.encrypt(secret)}
    return Project(
        team_id="team-1",
        name="weather-agent",
        slug="weather-agent",
        source_type="git",
        source_config={"repository_key": KEY, "source_id": "0" * 32, SOURCE_SECRETS_KEY: secrets},
    )


# -- reading -------------------------------------------------------------------------


def test_a_push_to_a_branch(source: GitProjectSource) -> None:
    event = source.read_webhook(github("push"), body_of("push.json"))

    assert event == RepositoryEvent(
        kind="push",
        event="push",
        delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        repository_key=KEY,
        branch="main",
        sha="9f3c2a7e41b0d6c58e2f1a4b7c9d0e3f5a6b8c1d",
        message="Add the forecast tool\n\nThe agent can now answer questions about tomorrow.",
    )


def test_a_tag_push_names_no_branch(source: GitProjectSource) -> None:
    event = source.read_webhook(github("push"), body_of("push.tag.json"))

    assert event.kind == "push"
    assert event.branch is None
    assert event.sha == "9f3c2a7e41b0d6c58e2f1a4b7c9d0e3f5a6b8c1d"


def test_a_deleted_branch_has_no_sha(source: GitProjectSource) -> None:
    event = source.read_webhook(github("push"), body_of("push.deleted.json"))

    assert (event.kind, event.branch, event.sha, event.message) == (
        "push",
        "old-experiment",
        None,
        None,
    )


def test_a_long_commit_message_is_cut_to_4_kb(source: GitProjectSource) -> None:
    body = payload("push.json")
    body["head_commit"]["message"] = "é" * 5000

    event = source.read_webhook(github("push"), json.dumps(body).encode())

    assert event.message is not None
    assert len(event.message.encode()) <= 4096
    assert event.message == "é" * 2048


@pytest.mark.parametrize(
    ("name", "action", "sha", "from_fork"),
    [
        ("pull_request.opened.json", "opened", "ec26c3e57ca3a959ca5aad62de7213c562f8c821", False),
        (
            "pull_request.synchronize.json",
            "updated",
            "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
            False,
        ),
        ("pull_request.closed.json", "closed", "ec26c3e57ca3a959ca5aad62de7213c562f8c821", False),
        (
            "pull_request.closed-merged.json",
            "closed",
            "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
            False,
        ),
        (
            "pull_request.opened-fork.json",
            "opened",
            "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
            True,
        ),
    ],
)
def test_pull_request_events(
    source: GitProjectSource, name: str, action: str, sha: str, from_fork: bool
) -> None:
    event = source.read_webhook(github("pull_request"), body_of(name))

    assert event.kind == "pull_request"
    assert event.event == "pull_request"
    assert event.repository_key == KEY
    assert event.branch is None
    assert event.sha is None
    assert event.pull_request == PullRequest(
        number=7,
        action=action,  # type: ignore[arg-type]
        head_sha=sha,
        head_branch="forecast",
        from_fork=from_fork,
        title="Forecast tool for the weather agent",
    )


@pytest.mark.parametrize("action", ["reopened", "ready_for_review"])
def test_reopened_and_ready_pull_requests(source: GitProjectSource, action: str) -> None:
    body = payload("pull_request.opened.json")
    body["action"] = action

    event = source.read_webhook(github("pull_request"), json.dumps(body).encode())

    assert event.pull_request is not None
    assert event.pull_request.action == {"reopened": "opened"}.get(action, "updated")


@pytest.mark.parametrize("action", ["edited", "labeled", "review_requested", "assigned"])
def test_pull_request_actions_that_change_no_code_are_other(
    source: GitProjectSource, action: str
) -> None:
    body = payload("pull_request.edited.json")
    body["action"] = action

    event = source.read_webhook(github("pull_request"), json.dumps(body).encode())

    assert (event.kind, event.pull_request, event.repository_key) == ("other", None, KEY)


def test_a_pull_request_whose_head_repository_is_gone_is_from_a_fork(
    source: GitProjectSource,
) -> None:
    body = payload("pull_request.opened-fork.json")
    body["pull_request"]["head"]["repo"] = None

    event = source.read_webhook(github("pull_request"), json.dumps(body).encode())

    assert event.pull_request is not None
    assert event.pull_request.from_fork is True


def test_a_gitea_delivery(source: GitProjectSource) -> None:
    headers = {"x-gitea-event": "pull_request", "x-gitea-delivery": "b1e9c0f4-4d4a-4a8e"}

    event = source.read_webhook(headers, body_of("gitea.pull_request.synchronized.json"))

    assert event.delivery_id == "b1e9c0f4-4d4a-4a8e"
    assert event.repository_key == "git.example.com/acme/weather-agent"
    assert event.pull_request == PullRequest(
        number=3,
        action="updated",
        head_sha="5d41402abc4b2a76b9719d911017c592abcdef12",
        head_branch="forecast",
        from_fork=False,
        title="Forecast tool",
    )


def test_ping_and_other_events(source: GitProjectSource) -> None:
    ping = source.read_webhook(github("ping"), body_of("ping.json"))
    issues = source.read_webhook(github("issues"), b'{"action": "opened", "issue": {}}')

    assert (ping.kind, ping.event, ping.repository_key) == ("ping", "ping", KEY)
    assert (issues.kind, issues.event, issues.repository_key) == ("other", "issues", "")


def test_the_repository_key_falls_back_to_ssh_and_html_urls(source: GitProjectSource) -> None:
    body = payload("push.json")
    del body["repository"]["clone_url"]
    ssh = source.read_webhook(github("push"), json.dumps(body).encode())
    del body["repository"]["ssh_url"]
    html = source.read_webhook(github("push"), json.dumps(body).encode())

    assert ssh.repository_key == html.repository_key == KEY


def _without(name: str, *path: str) -> bytes:
    body = copy.deepcopy(payload(name))
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return json.dumps(body).encode()


def _with(name: str, value: Any, *path: str) -> bytes:
    body = copy.deepcopy(payload(name))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("event", "body", "words"),
    [
        ("push", b"{not json", "not JSON"),
        ("push", b"\xff\xfe\x00garbage", "not JSON"),
        ("push", b"[1, 2, 3]", "not a JSON object"),
        ("push", b'"a string"', "not a JSON object"),
        ("push", b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        ("push", _without("push.json", "ref"), "ref"),
        ("push", _without("push.json", "after"), "after"),
        ("push", _with("push.json", "not-a-sha", "after"), "after is not a 40-digit commit id"),
        ("push", _with("push.json", "9f3c2a7e", "after"), "40-digit"),
        ("push", _without("push.json", "repository"), "repository is missing"),
        ("push", _with("push.json", "acme/weather-agent", "repository"), "not an object"),
        (
            "push",
            _with("push.json", {"clone_url": "not a url", "html_url": 5}, "repository"),
            "clone_url, ssh_url or html_url",
        ),
        ("pull_request", _without("pull_request.opened.json", "action"), "action"),
        ("pull_request", _with("pull_request.opened.json", 0, "number"), "number"),
        ("pull_request", _with("pull_request.opened.json", True, "number"), "number"),
        ("pull_request", _with("pull_request.opened.json", "7", "number"), "number"),
        ("pull_request", _without("pull_request.opened.json", "pull_request"), "pull_request"),
        (
            "pull_request",
            _with("pull_request.opened.json", "zz" * 20, "pull_request", "head", "sha"),
            "pull_request.head.sha is not a 40-digit commit id",
        ),
        (
            "pull_request",
            _without("pull_request.opened.json", "pull_request", "head", "ref"),
            "pull_request.head.ref",
        ),
    ],
)
def test_malformed_deliveries_are_refused_with_a_reason(
    source: GitProjectSource, event: str, body: bytes, words: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        source.read_webhook(github(event), body)

    assert words in refused.value.message
    assert refused.value.message.startswith("webhook refused: ")


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "no X-GitHub-Event or X-Gitea-Event header"),
        ({"x-github-event": "push"}, "x-github-delivery"),
        ({"x-github-event": "push", "x-github-delivery": "  "}, "x-github-delivery"),
        ({"x-github-event": "push", "x-github-delivery": "d" * 201}, "200 characters"),
        ({"x-github-event": "", "x-github-delivery": "d"}, "x-github-event"),
        ({"x-gitea-event": "push"}, "x-gitea-delivery"),
    ],
)
def test_deliveries_without_their_headers_are_refused(
    source: GitProjectSource, headers: dict[str, str], words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        source.read_webhook(headers, body_of("push.json"))


def test_an_oversized_body_is_refused(source: GitProjectSource) -> None:
    with pytest.raises(PayloadTooLarge):
        source.read_webhook(github("push"), b" " * (25 * 1024 * 1024 + 1))


# -- signatures ------------------------------------------------------------------------


def test_the_signature_made_with_the_project_secret_is_accepted(
    source: GitProjectSource,
) -> None:
    body = body_of("push.json")
    project = project_with(source, SECRET)

    assert source.verify_webhook(project, {"x-hub-signature-256": signed(body)}, body) is True


def test_githubs_documented_example_signature(source: GitProjectSource) -> None:
    # From GitHub's "Validating webhook deliveries": secret, body and signature.
    project = project_with(source, SECRET)
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    assert source.verify_webhook(project, {"x-hub-signature-256": header}, b"Hello, World!")


@pytest.mark.parametrize(
    "case", ["wrong secret", "body changed", "header missing", "sha1", "truncated", "bare hex"]
)
def test_signatures_that_do_not_match_are_refused(source: GitProjectSource, case: str) -> None:
    body = body_of("push.json")
    good = signed(body)
    headers = {
        "wrong secret": {"x-hub-signature-256": signed(body, "another secret of ours")},
        "body changed": {"x-hub-signature-256": good},
        "header missing": {"x-hub-signature": "sha1=" + "0" * 40},
        "sha1": {
            "x-hub-signature-256": "sha1="
            + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        },
        "truncated": {"x-hub-signature-256": good[:-1]},
        "bare hex": {"x-hub-signature-256": good.removeprefix("sha256=")},
    }[case]
    sent = body.replace(b"main", b"mainx", 1) if case == "body changed" else body

    assert source.verify_webhook(project_with(source, SECRET), headers, sent) is False


def test_one_changed_byte_breaks_the_signature(source: GitProjectSource) -> None:
    body = bytearray(body_of("push.json"))
    header = {"x-hub-signature-256": signed(bytes(body))}
    body[len(body) // 2] ^= 0x01

    assert source.verify_webhook(project_with(source, SECRET), header, bytes(body)) is False


def test_upper_case_hex_is_accepted(source: GitProjectSource) -> None:
    body = body_of("push.json")
    header = "sha256=" + signed(body).removeprefix("sha256=").upper()

    assert source.verify_webhook(
        project_with(source, SECRET), {"x-hub-signature-256": header}, body
    )


def test_no_secret_or_an_undecryptable_one_verifies_nothing(source: GitProjectSource) -> None:
    body = body_of("push.json")
    headers = {"x-hub-signature-256": signed(body)}
    without = project_with(source, None)
    broken = project_with(source, SECRET)
    broken.source_config[SOURCE_SECRETS_KEY]["webhook_secret"] = "v1:k1:AAAA"
    other_type = project_with(source, SECRET).model_copy(update={"source_type": "local"})

    with capture_logs() as logs:
        results = [source.verify_webhook(p, headers, body) for p in (without, broken, other_type)]

    assert results == [False, False, False]
    assert SECRET not in json.dumps(logs, default=str)


async def test_the_secret_given_at_connect_verifies_deliveries(
    git_source: GitProjectSource, team: Team, storage: InMemoryAdminStorage
) -> None:
    secret = "a-webhook-secret-of-32-characters"
    with GitHttpServer(Path(git_source.cache.root).parent / "served") as server:
        make_repository(
            server.root,
            "agent",
            {
                "package.json": '{"name": "a", "dependencies": {"@mastra/core": "1"}}',
                "src/mastra/index.ts": "export {};\n",
            },
        )
        connection = await git_source.connect(
            team.id, {"url": server.url("agent"), "webhook_secret": secret}, default_branch="main"
        )
    project = await register(storage, team.id, connection)
    body = b'{"zen": "Keep it logically awesome."}'

    assert git_source.verify_webhook(project, {"x-hub-signature-256": signed(body, secret)}, body)
    assert not git_source.verify_webhook(
        project.without_secrets(), {"x-hub-signature-256": signed(body, secret)}, body
    )
