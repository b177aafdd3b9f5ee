"""Bearer tokens: generated once, shown once, kept only as a SHA-256 hash.

A raw token reads ``<prefix>_<43 url-safe characters>`` (256 random bits). The
prefix says what kind of token it is (``mat`` a user's API token, ``mpt`` a project
token, ``mai`` an invite), so a leaked token is recognisable by secret scanners and
a person can tell tokens apart by their display prefix. Because the tokens carry
256 bits of entropy a plain SHA-256 is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

__all__ = [
    "DISPLAY_PREFIX_LENGTH",
    "INVITE_TOKEN_PREFIX",
    "PROJECT_TOKEN_PREFIX",
    "USER_TOKEN_PREFIX",
    "GeneratedToken",
    "generate_token",
    "hash_token",
    "token_matches",
]

USER_TOKEN_PREFIX = "mat"
PROJECT_TOKEN_PREFIX = "mpt"
INVITE_TOKEN_PREFIX = "mai"
DISPLAY_PREFIX_LENGTH = 12
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")


class GeneratedToken(NamedTuple):
    """A new token: ``raw`` is given to its owner once; ``token_hash`` and
    ``display_prefix`` are what is stored."""

    raw: str
    token_hash: str
    display_prefix: str


def generate_token(prefix: str = USER_TOKEN_PREFIX) -> GeneratedToken:
    """A new random token with its hash and display prefix (e.g. ``mat_Ab3dEf9h``)."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError("a token prefix is 1-16 lowercase letters or digits")
    raw = f"{prefix}_{secrets.token_urlsafe(32)}"
    return GeneratedToken(raw, hash_token(raw), raw[:DISPLAY_PREFIX_LENGTH])


def hash_token(raw: str) -> str:
    """The SHA-256 hex digest under which a token is stored and looked up."""
    return hashlib.sha256(raw.encode()).hexdigest()


def token_matches(raw: str, token_hash: str) -> bool:
    """Whether ``raw`` hashes to ``token_hash``, compared in constant time."""
    return hmac.compare_digest(hash_token(raw), token_hash)
