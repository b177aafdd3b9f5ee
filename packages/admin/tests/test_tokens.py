"""API token generation and hashing; the console email and no-billing providers."""

from __future__ import annotations

import hashlib
import re

import pytest

from mastra_admin.core.billing import NoBillingProvider
from mastra_admin.core.email import ConsoleEmailProvider, EmailMessage
from mastra_admin.core.tokens import (
    PROJECT_TOKEN_PREFIX,
    USER_TOKEN_PREFIX,
    generate_token,
    hash_token,
    token_matches,
)


def test_a_token_is_prefixed_random_and_stored_only_as_its_hash() -> None:
    raw, token_hash, display = generate_token(USER_TOKEN_PREFIX)
    assert re.fullmatch(r"mat_[A-Za-z0-9_-]{43}", raw)
    assert token_hash == hashlib.sha256(raw.encode()).hexdigest() == hash_token(raw)
    assert raw not in token_hash
    assert display == raw[:12]
    assert display.startswith("mat_")
    assert token_matches(raw, token_hash)
    assert not token_matches(raw + "x", token_hash)


def test_tokens_do_not_repeat() -> None:
    tokens = {generate_token(PROJECT_TOKEN_PREFIX).raw for _ in range(200)}
    assert len(tokens) == 200
    assert all(t.startswith("mpt_") for t in tokens)


def test_a_bad_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        generate_token("Not OK")


async def test_console_email_keeps_what_it_sent() -> None:
    email = ConsoleEmailProvider(keep=2)
    for n in range(3):
        await email.send(EmailMessage(to=f"p{n}@example.com", subject="hi", text="hello"))
    assert [m.to for m in email.sent] == ["p1@example.com", "p2@example.com"]


async def test_no_billing_allows_everything() -> None:
    billing = NoBillingProvider()
    await billing.record_usage("team", "builds", 3)
    assert await billing.can_use("team", "builds")
    assert billing.type == "none"
