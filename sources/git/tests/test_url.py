"""Repository URLs from users: only https, ssh and allowed local repositories reach git."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mastra_admin.core.errors import InvalidInput
from mastra_admin.sources.git import (
    GitHostUnreachable,
    GitSourceSettings,
    check_repository_url,
    redact_url,
)

from .conftest import PUBLIC, fake_resolve

HOSTILE = [
    # remote helpers and option injection
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh",
    "fd::17",
    "fd::0,1/x",
    "foo::https://github.com/a/b",
    "--upload-pack=touch /tmp/x",
    "-oProxyCommand=touch /tmp/x",
    "ssh://-oProxyCommand=touch%20x/x",
    "ssh://-git@github.com/a/b",
    "ssh://git@github.com/-x/y",
    "git@github.com:-x/y",
    "-git@github.com:a/b",
    # credentials in the URL
    "https://user:pw@github.com/a/b",
    "https://ghp_secret@github.com/a/b",
    "HTTPS://USER:PW@github.com/a/b",
    "ssh://git:pw@github.com/a/b",
    "git:pw@github.com:a/b",
    # schemes
    "git://github.com/a/b",
    "http://example.com/x",
    "ftp://github.com/a/b",
    "git+ssh://git@github.com/a/b",
    "relative/path",
    "file://host/etc",
    # literal private, loopback, link-local, multicast, reserved addresses
    "https://127.0.0.1/x",
    "https://127.1/x",
    "https://2130706433/x",
    "https://0x7f.0.0.1/x",
    "https://0177.0.0.1/x",
    "https://0.0.0.0/x",
    "https://10.0.0.1/x",
    "https://172.16.3.4/x",
    "https://192.168.1.10/x",
    "https://100.64.0.1/x",
    "https://169.254.169.254/x",
    "https://224.0.0.1/x",
    "https://240.0.0.1/x",
    "https://[::1]/x",
    "https://[::]/x",
    "https://[fe80::1]/x",
    "https://[fc00::1]/x",
    "https://[ff02::1]/x",
    "https://[::ffff:127.0.0.1]/x",
    "https://[::ffff:10.0.0.1]/x",
    "https://[64:ff9b::7f00:1]/x",
    "https://[2002:7f00:1::]/x",
    "https://[::1%25lo]/x",
    "git@127.0.0.1:a/b",
    "ssh://git@[::1]:22/a/b",
    # names that resolve to such addresses (the fake resolver answers)
    "https://internal.test/x",
    "https://metadata.test/latest/meta-data",
    "https://mixed.test/x",
    "ssh://git@v6loop.test/x",
    "git@mapped.test:a/b",
    # malformed
    "",
    "https://github.com/a b",
    "https://github.com/a/b\n",
    "https://github.com/a\x00b",
    "https://github.com/a\tb",
    "https://github.com/a\x7fb",
    "https://github.com/a\u2028b",
    "https://github.com/" + "a" * 2100,
    "https://github.com",
    "https://github.com/",
    "https://github.com:99999/a",
    "https://github.com:/a",
    "https://github.com:22x/a",
    "https://github.com/a?x=1",
    "https://github.com/a#x",
    "https://github.com/a/%2e%2e/b",
    "https://github.com/a/%00",
    "https://exa_mple.com/x",
    "https://-github.com/x",
    "https://gïthub.com/x",
    "https://1.2.3.4.5/x",
    "https://github.com\\@evil.com/x",
    "https://[github.com]/x",
    "https://[::1/x",
    "git@[github.com:22]:a/b",
    "ssh://git@github.com/a/%2d%2dupload-pack",
]


@pytest.fixture
def strict() -> GitSourceSettings:
    """The defaults: public https and ssh only."""
    return GitSourceSettings()


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_are_refused(url: str, strict: GitSourceSettings) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_repository_url(url, strict, resolve=fake_resolve)

    assert refused.value.message.startswith("repository URL refused: ")
    assert "pw" not in str(refused.value.details["url"]).replace("pwned", "")
    assert "ghp_secret" not in str(refused.value.details)


@pytest.mark.parametrize(
    ("url", "scheme", "host", "expected"),
    [
        (
            "https://github.com/mastra-ai/mastra.git",
            "https",
            "github.com",
            "https://github.com/mastra-ai/mastra.git",
        ),
        ("HTTPS://GitHub.com/a/b", "https", "github.com", "https://github.com/a/b"),
        ("https://github.com:8443/a/b", "https", "github.com", "https://github.com:8443/a/b"),
        ("ssh://git@github.com/a/b.git", "ssh", "github.com", "ssh://git@github.com/a/b.git"),
        ("ssh://git@github.com:2222/a/b", "ssh", "github.com", "ssh://git@github.com:2222/a/b"),
        ("ssh://github.com/a/b", "ssh", "github.com", "ssh://github.com/a/b"),
        ("git@github.com:a/b.git", "ssh", "github.com", "git@github.com:a/b.git"),
        ("git@gitlab.example:group/sub/app", "ssh", "gitlab.example", None),
        ("https://1.1.1.1/a/b", "https", "1.1.1.1", "https://1.1.1.1/a/b"),
        ("https://[2606:4700::1111]/a", "https", "2606:4700::1111", "https://[2606:4700::1111]/a"),
        ("https://github.com/a/b%20c", "https", "github.com", "https://github.com/a/b%20c"),
    ],
)
def test_good_urls_pass_in_a_form_git_is_given(
    url: str, scheme: str, host: str, expected: str | None, strict: GitSourceSettings
) -> None:
    checked = check_repository_url(url, strict, resolve=fake_resolve)

    assert checked.scheme == scheme
    assert checked.host == host
    assert checked.url == (expected or url)
    assert checked.display == checked.url


def test_names_are_resolved_and_the_addresses_kept(strict: GitSourceSettings) -> None:
    checked = check_repository_url("https://gitlab.example/a/b", strict, resolve=fake_resolve)

    assert checked.addresses == (PUBLIC, "2606:2800:220:1:248:1893:25c8:1946")


def test_literal_addresses_are_not_resolved(strict: GitSourceSettings) -> None:
    def no_dns(host: str) -> list[str]:
        raise AssertionError(f"resolved {host}")

    assert check_repository_url("https://1.1.1.1/a", strict, resolve=no_dns).addresses == ()


def test_a_host_that_does_not_resolve_is_unreachable(strict: GitSourceSettings) -> None:
    with pytest.raises(GitHostUnreachable) as failed:
        check_repository_url("https://nowhere.test/a", strict, resolve=fake_resolve)

    assert "nowhere.test" in failed.value.message


def test_private_addresses_pass_when_allowed() -> None:
    lab = GitSourceSettings(allow_private_addresses=True)

    assert check_repository_url("https://10.0.0.1/x", lab).host == "10.0.0.1"
    resolved = check_repository_url("https://internal.test/x", lab, resolve=fake_resolve)
    assert resolved.addresses == ("127.0.0.1",)


def test_plain_http_passes_only_for_listed_hosts() -> None:
    lab = GitSourceSettings(allow_insecure_http_hosts=["127.0.0.1"], allow_private_addresses=True)

    assert check_repository_url("http://127.0.0.1:8080/a.git", lab).scheme == "http"
    with pytest.raises(InvalidInput):
        check_repository_url("http://github.com/a.git", lab, resolve=fake_resolve)
    with pytest.raises(InvalidInput, match="credentials"):
        check_repository_url("http://u:p@127.0.0.1/a.git", lab)


def test_refusals_name_the_url_without_its_credential(strict: GitSourceSettings) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_repository_url("https://alice:hunter2@github.com/a/b", strict)

    assert refused.value.details == {"url": "https://***@github.com/a/b"}
    assert "hunter2" not in refused.value.message
    assert "credential" in refused.value.message


def test_redaction_escapes_control_characters() -> None:
    assert redact_url("https://a:b@h/x\n") == "https://***@h/x\\n"
    assert redact_url("u:secret@host:path") == "***@host:path"


# -- local repositories ---------------------------------------------------------------


@pytest.fixture
def base(tmp_path: Path) -> Path:
    folder = tmp_path / "repos"
    (folder / "app.git").mkdir(parents=True)
    return folder


def test_local_paths_are_refused_without_base_paths(strict: GitSourceSettings) -> None:
    for url in ("file:///etc", "/etc", "file:///tmp/x.git"):
        with pytest.raises(InvalidInput, match="file_base_paths"):
            check_repository_url(url, strict)


def test_local_paths_under_a_base_path_pass(base: Path) -> None:
    settings = GitSourceSettings(file_base_paths=[base])

    for url in (f"file://{base}/app.git", f"{base}/app.git"):
        checked = check_repository_url(url, settings)
        assert checked.scheme == "file"
        assert checked.url == f"file://{os.path.realpath(base)}/app.git"


@pytest.mark.parametrize(
    "url",
    [
        "file://{base}/../etc",
        "{base}/../etc",
        "{base}/app.git/../../x",
        "file:///etc",
        "/etc/passwd",
        "file://{base}/%2e%2e/x",
        "file:////{base}/app.git",
        "file://{base}/app.git\n",
        "{base}/link-out",
    ],
)
def test_local_paths_outside_the_base_paths_are_refused(
    url: str, base: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (base / "link-out").symlink_to(tmp_path / "outside")
    settings = GitSourceSettings(file_base_paths=[base])

    with pytest.raises(InvalidInput):
        check_repository_url(url.format(base=base), settings)


def test_a_base_path_reached_through_a_symlink_still_counts(base: Path, tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(base)
    settings = GitSourceSettings(file_base_paths=[tmp_path / "alias"])

    checked = check_repository_url(f"{base}/app.git", settings)

    assert checked.url == f"file://{os.path.realpath(base)}/app.git"
