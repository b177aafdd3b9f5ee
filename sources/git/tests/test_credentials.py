"""Credentials reach git through the environment or a private file, never argv, the URL,
the cache, an error message or a log line."""

from __future__ import annotations

import base64
import os
import shlex
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from mastra_admin.core.errors import InvalidInput
from mastra_admin.sources.git import (
    GitCache,
    GitHostUnreachable,
    GitSourceSettings,
    HttpsToken,
    RepositoryUnreadable,
    RepositoryUrl,
    SshKey,
    check_repository_url,
)
from mastra_admin.sources.git._process import Masker, git_environment
from mastra_admin.sources.git.testing import GitHttpServer, make_repository

from .conftest import Spawned

TOKEN = "ghs_TopSecretToken1234567890"
HEADER = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
FAKE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\r\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\r\n"
    "QyNTUxOQAAACBkZWFkYmVlZmRlYWRiZWVmZGVhZGJlZWZkZWFkYmVlZgAAAJiAAAAAAAAAAA\r\n"
    "-----END OPENSSH PRIVATE KEY-----"
)

Check = Callable[[str], RepositoryUrl]
NewKey = Callable[[], str]


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path / "private", token=TOKEN) as running:
        make_repository(running.root, "app", {"secret.txt": "only with the token"})
        yield running


def leaks(*texts: object) -> list[str]:
    """The texts that carry the token in any form."""
    return [str(t) for t in texts if TOKEN in str(t) or HEADER in str(t)]


async def test_the_right_token_reads_the_repository(
    private_server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey, tmp_path: Path
) -> None:
    key = new_key()

    with capture_logs() as logs:
        fetched = await cache.fetch(
            key, checked(private_server.url("app")), "main", HttpsToken(token=TOKEN)
        )
    root = await cache.export(key, fetched.sha, tmp_path / "out")

    assert (root / "secret.txt").read_text() == "only with the token"
    assert leaks(*logs) == []


@pytest.mark.parametrize("credential", [None, HttpsToken(token="wrong-token")])
async def test_no_token_or_a_wrong_one_is_denied_without_leaking(
    credential: HttpsToken | None,
    private_server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
) -> None:
    with capture_logs() as logs, pytest.raises(RepositoryUnreadable) as denied:
        await cache.fetch(new_key(), checked(private_server.url("app")), "main", credential)

    assert denied.value.message == "the repository does not exist or the credential cannot read it"
    assert leaks(denied.value, denied.value.details, repr(denied.value), *logs) == []
    assert "wrong-token" not in str(denied.value.details)


async def test_the_token_is_in_the_environment_only(
    private_server: GitHttpServer,
    cache: GitCache,
    checked: Check,
    new_key: NewKey,
    spawned: list[Spawned],
) -> None:
    key = new_key()
    await cache.fetch(key, checked(private_server.url("app")), "main", HttpsToken(token=TOKEN))

    fetch = next(s for s in spawned if "fetch" in s.argv)
    assert leaks(*fetch.argv, fetch.cmdline) == []
    assert fetch.env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert fetch.env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {HEADER}"
    others = [s for s in spawned if s is not fetch]
    assert all(leaks(*s.argv, *s.env.values()) == [] for s in others)
    stored = [
        path for path in cache.path_for(key).rglob("*") if path.is_file()
    ]  # config, refs, packs: none holds the token
    assert all(TOKEN.encode() not in p.read_bytes() for p in stored)
    assert all(HEADER.encode() not in p.read_bytes() for p in stored)


async def test_a_credential_of_the_wrong_kind_is_refused(
    private_server: GitHttpServer, cache: GitCache, checked: Check, new_key: NewKey
) -> None:
    with pytest.raises(InvalidInput, match="SshKey"):
        await cache.fetch(
            new_key(), checked(private_server.url("app")), "main", SshKey(private_key=FAKE_KEY)
        )


@pytest.mark.parametrize("token", ["", "a b", "tok\r\nX-Evil: 1", "tok\x00"])
def test_tokens_with_whitespace_or_control_characters_are_refused(token: str) -> None:
    with pytest.raises(ValidationError) as refused:
        HttpsToken(token=token)

    assert "input_value" not in str(refused.value)


def test_a_key_that_is_not_a_private_key_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        SshKey(private_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@laptop")

    assert "AAAAC3NzaC1lZDI1NTE5" not in str(refused.value)


def test_the_masker_hides_every_form_of_the_secret() -> None:
    masker = Masker(HttpsToken(token=TOKEN).secrets())
    text = (
        f"token {TOKEN}; header Authorization: Basic {HEADER}; "
        f"url https://x-access-token:{TOKEN}@github.com/a; raw {HEADER}"
    )

    masked = masker(text)

    assert TOKEN not in masked
    assert HEADER not in masked
    assert "https://***@github.com/a" in masked


# -- ssh --------------------------------------------------------------------------------


def test_an_ssh_key_lives_in_a_private_file_for_the_operation_only() -> None:
    url = check_repository_url(
        "ssh://git@127.0.0.1:2222/app.git", GitSourceSettings(allow_private_addresses=True)
    )

    with git_environment(url, SshKey(private_key=FAKE_KEY)) as environment:
        command = shlex.split(environment.env["GIT_SSH_COMMAND"])
        key_file = Path(command[command.index("-i") + 1])
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
        assert key_file.read_text().endswith("-----END OPENSSH PRIVATE KEY-----\n")
        assert "\r" not in key_file.read_text()
        assert environment.env["GIT_ALLOW_PROTOCOL"] == "ssh"
        options = " ".join(command)
        for option in (
            "IdentitiesOnly=yes",
            "BatchMode=yes",
            "StrictHostKeyChecking=accept-new",
            "UserKnownHostsFile=",
        ):
            assert option in options
        assert "b3BlbnNzaC1rZXkt" not in environment.env["GIT_SSH_COMMAND"]
    assert not key_file.exists()
    assert not key_file.parent.parent.exists()


def test_known_hosts_pin_the_host_key() -> None:
    url = check_repository_url(
        "ssh://git@127.0.0.1:2222/app.git", GitSourceSettings(allow_private_addresses=True)
    )
    line = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeadBeefDeadBeefDeadBeef"
    key = SshKey(private_key=FAKE_KEY, known_hosts=f"# the server\r\n{line}\r\n\r\n")

    with git_environment(url, key) as environment:
        command = shlex.split(environment.env["GIT_SSH_COMMAND"])
        options = " ".join(command)
        known = Path(options.split("UserKnownHostsFile=")[1].split()[0])
        assert "StrictHostKeyChecking=yes" in options
        assert "accept-new" not in options
        assert known.read_text() == line + "\n"
        assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert not known.exists()


@pytest.mark.parametrize("known_hosts", ["", "# only a comment\n", "host-only\n", "a b c\x07\n"])
def test_known_hosts_that_name_no_key_are_refused(known_hosts: str) -> None:
    with pytest.raises(ValidationError):
        SshKey(private_key=FAKE_KEY, known_hosts=known_hosts)


async def test_an_ssh_fetch_cleans_up_its_key_and_names_an_unreachable_host(
    tmp_path: Path, new_key: NewKey, spawned: list[Spawned]
) -> None:
    settings = GitSourceSettings(allow_private_addresses=True, fetch_timeout_s=30)
    cache = GitCache(tmp_path / "cache", settings)
    url = check_repository_url("ssh://git@127.0.0.1:1/app.git", settings)

    with pytest.raises(GitHostUnreachable) as unreachable:
        await cache.fetch(new_key(), url, "main", SshKey(private_key=FAKE_KEY))

    assert "127.0.0.1" in unreachable.value.message
    fetch = next(s for s in spawned if "fetch" in s.argv)
    command = shlex.split(fetch.env["GIT_SSH_COMMAND"])
    assert not os.path.exists(command[command.index("-i") + 1])
    assert "b3BlbnNzaC1rZXkt" not in " ".join(fetch.argv)
    assert "b3BlbnNzaC1rZXkt" not in str(unreachable.value.details)
