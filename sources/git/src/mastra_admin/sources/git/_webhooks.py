"""Webhook deliveries of GitHub and Gitea (GitHub-shaped bodies): reading one into a
``RepositoryEvent`` and checking its ``X-Hub-Signature-256``.

Nothing read here is trusted until the signature is checked against a project's
secret; reading only decides which projects to check it against.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from mastra_admin.core.errors import InvalidInput, PayloadTooLarge
from mastra_admin.core.source import PullRequest, RepositoryEvent
from mastra_admin.sources.git._identity import repository_key_from_text

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "SIGNATURE_HEADER",
    "parse_webhook",
    "signature_matches",
]

MAX_WEBHOOK_BYTES = 25 * 1024 * 1024
"""GitHub caps deliveries at 25 MB."""
SIGNATURE_HEADER = "x-hub-signature-256"

_HEADERS = (("x-github-event", "x-github-delivery"), ("x-gitea-event", "x-gitea-delivery"))
_SHA = re.compile(r"[0-9a-fA-F]{40}")
_ZERO_SHA = "0" * 40
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_MAX_MESSAGE = 4096
_MAX_TITLE = 1024
_MAX_NAME = 1024
_PR_ACTIONS: dict[str, Literal["opened", "updated", "closed"]] = {
    "opened": "opened",
    "reopened": "opened",
    "synchronize": "updated",
    "synchronized": "updated",  # Gitea's name for new commits on the head branch
    "ready_for_review": "updated",
    "closed": "closed",
}
"""Pull request actions that change what a preview runs; ``edited`` (title, body, base)
and the others change no code and read as kind ``other``."""


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(f"webhook refused: {message}", details={"field": "body"})


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _plain(value: Any, what: str, *, limit: int = _MAX_NAME) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise _invalid(f"{what} is missing or not a short line of text")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{what} is missing or not an object")
    return value


def _sha(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _SHA.fullmatch(value):
        raise _invalid(f"{what} is not a 40-digit commit id")
    return value.lower()


def _headers(headers: Mapping[str, str]) -> tuple[str, str]:
    for event_header, delivery_header in _HEADERS:
        event = headers.get(event_header)
        if event is None:
            continue
        event = event.strip()
        if not event or len(event) > 100 or not event.isprintable():
            raise _invalid(f"the {event_header} header is empty or malformed")
        delivery = (headers.get(delivery_header) or "").strip()
        if not delivery:
            raise _invalid(f"the {delivery_header} header (the delivery id) is missing")
        if len(delivery) > 200 or not delivery.isprintable():
            raise _invalid(f"the {delivery_header} header is longer than 200 characters")
        return event, delivery
    raise _invalid("not a GitHub or Gitea delivery (no X-GitHub-Event or X-Gitea-Event header)")


def _payload(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_WEBHOOK_BYTES:
        raise PayloadTooLarge(
            "webhook refused: the body is larger than 25 MB",
            details={"limit": MAX_WEBHOOK_BYTES},
        )
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid("the body is not JSON (send it as application/json)") from None
    except RecursionError:
        raise _invalid("the body nests too deeply") from None
    if not isinstance(payload, dict):
        raise _invalid("the body is not a JSON object")
    return payload


def _repository_key(payload: dict[str, Any], *, required: bool) -> str:
    repository = payload.get("repository")
    if repository is None and not required:
        return ""
    repository = _object(repository, "repository")
    for name in ("clone_url", "ssh_url", "html_url"):
        value = repository.get(name)
        key = repository_key_from_text(value) if isinstance(value, str) else None
        if key:
            return key
    raise _invalid("repository has no clone_url, ssh_url or html_url naming a repository")


def _push(payload: dict[str, Any]) -> dict[str, Any]:
    ref = _plain(payload.get("ref"), "ref")
    after = _sha(payload.get("after"), "after")
    deleted = payload.get("deleted") is True or after == _ZERO_SHA
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    head = payload.get("head_commit")
    message = head.get("message") if isinstance(head, dict) else None
    return {
        "branch": branch or None,
        "sha": None if deleted else after,
        "message": _cut_utf8(message, _MAX_MESSAGE) if isinstance(message, str) else None,
    }


def _full_name(repo: Any) -> str | None:
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name.lower() if isinstance(name, str) and name else None


def _pull_request(payload: dict[str, Any]) -> PullRequest | None:
    action = _plain(payload.get("action"), "action", limit=100)
    kind = _PR_ACTIONS.get(action)
    if kind is None:
        return None
    pull = _object(payload.get("pull_request"), "pull_request")
    number = payload.get("number", pull.get("number"))
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise _invalid("number is not a pull request number (a whole number from 1)")
    head = _object(pull.get("head"), "pull_request.head")
    base = _object(pull.get("base"), "pull_request.base")
    head_sha = _sha(head.get("sha"), "pull_request.head.sha")
    head_branch = _plain(head.get("ref"), "pull_request.head.ref")
    head_repo = _full_name(head.get("repo"))
    base_repo = _full_name(base.get("repo")) or _full_name(payload.get("repository"))
    title = pull.get("title")
    return PullRequest(
        number=number,
        action=kind,
        head_sha=head_sha,
        head_branch=head_branch,
        from_fork=head_repo is None or head_repo != base_repo,
        title=title[:_MAX_TITLE] if isinstance(title, str) else "",
    )


def parse_webhook(headers: Mapping[str, str], body: bytes) -> RepositoryEvent:
    """The delivery as a ``RepositoryEvent`` (``headers`` with lower-case names);
    ``InvalidInput`` saying what is wrong with a malformed one."""
    event, delivery = _headers(headers)
    payload = _payload(body)
    fields: dict[str, Any] = {"event": event, "delivery_id": delivery}
    if event == "ping":
        fields.update(kind="ping", repository_key=_repository_key(payload, required=False))
    elif event == "push":
        fields.update(kind="push", repository_key=_repository_key(payload, required=True))
        fields.update(_push(payload))
    elif event == "pull_request":
        key = _repository_key(payload, required=True)
        pull = _pull_request(payload)
        fields.update(
            kind="other" if pull is None else "pull_request",
            repository_key=key,
            pull_request=pull,
        )
    else:
        fields.update(kind="other", repository_key=_repository_key(payload, required=False))
    try:
        return RepositoryEvent.model_validate(fields)
    except ValidationError as exc:  # pragma: no cover - every field was checked above
        raise _invalid("the delivery does not fit a repository event") from exc


def signature_matches(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether ``X-Hub-Signature-256: sha256=<hex>`` is the HMAC-SHA256 of ``body``
    under ``secret`` (hex digits of either case; ``sha1=`` signatures are not taken)."""
    header = headers.get(SIGNATURE_HEADER)
    if not secret or not isinstance(header, str) or not isinstance(body, bytes | bytearray):
        return False
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        return False
    expected = hmac.new(secret.encode(), bytes(body), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match.group(1).lower())
