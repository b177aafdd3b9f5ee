"""Encryption of secrets at rest (env var values): the interface and AES-256-GCM."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import stat
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mastra_admin.core.errors import InvalidInput

__all__ = ["AesGcmEncryption", "EncryptionProvider"]

_log = structlog.get_logger("mastra_admin.core.encryption")

_VERSION = "v1"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class EncryptionProvider(ABC):
    """Encrypts short strings. Ciphertexts name the key they were made with, so keys
    can be rotated: new values use the current key, old ones still decrypt."""

    type: ClassVar[str]

    @abstractmethod
    def encrypt(self, plaintext: str) -> str: ...

    @abstractmethod
    def decrypt(self, ciphertext: str) -> str:
        """``InvalidInput`` when the ciphertext is malformed, tampered with, or made
        with a key this provider does not hold."""

    @property
    @abstractmethod
    def current_key_id(self) -> str: ...


def _aad_bytes(aad: str | bytes | None) -> bytes | None:
    if aad is None:
        return None
    return aad.encode() if isinstance(aad, str) else aad


class AesGcmEncryption(EncryptionProvider):
    """AES-256-GCM with named keys.

    A ciphertext reads ``v1:<key_id>:<base64(nonce + ciphertext + tag)>`` with a
    random 96-bit nonce per value. ``aad`` (associated data, e.g. the project id and
    key of an env var) binds a ciphertext to its place: decrypting it with other
    associated data fails, so a value copied to another row does not decrypt.

    Keys live in memory; ``from_key_file`` keeps them in a JSON file (mode 0600)
    that it creates on first use, and ``rotate`` adds a new current key to it.
    """

    type: ClassVar[str] = "aes-gcm"

    def __init__(
        self,
        keys: Mapping[str, bytes],
        current_key_id: str,
        *,
        key_file: Path | None = None,
    ) -> None:
        if not keys:
            raise InvalidInput("at least one encryption key is needed")
        for key_id, key in keys.items():
            _check_key(key_id, key)
        if current_key_id not in keys:
            raise InvalidInput(
                "the current encryption key id names no key",
                details={"current_key_id": current_key_id, "key_ids": sorted(keys)},
            )
        self._keys: dict[str, AESGCM] = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._raw: dict[str, bytes] = dict(keys)
        self._current = current_key_id
        self._key_file = key_file

    # --- keys --------------------------------------------------------------------

    @staticmethod
    def generate_key() -> bytes:
        """A new random 256-bit key."""
        return AESGCM.generate_key(bit_length=256)

    @staticmethod
    def new_key_id() -> str:
        """A short random key id (``k`` and 8 hex digits)."""
        return "k" + secrets.token_hex(4)

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str]) -> AesGcmEncryption:
        """Load keys from ``path``, creating the file with one new key when absent.

        The file is JSON ``{"current": "<id>", "keys": {"<id>": "<base64 key>"}}``,
        created with mode 0600 (exclusively, so that two processes starting at once
        end up with the same key).
        """
        key_path = Path(path)
        if not key_path.exists():
            key_id = cls.new_key_id()
            document = _key_document({key_id: cls.generate_key()}, key_id)
            key_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first: use theirs
            else:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(document)
                    handle.flush()
                    os.fsync(handle.fileno())
                _log.info("encryption.key_file_created", path=str(key_path), key_id=key_id)
        keys, current = _read_key_file(key_path)
        return cls(keys, current, key_file=key_path)

    def rotate(self, key: bytes | None = None, key_id: str | None = None) -> str:
        """Add a new key and make it current; values encrypted with older keys still
        decrypt. Persists to the key file when there is one. Returns the new key id."""
        new_key = key if key is not None else self.generate_key()
        new_id = key_id or self.new_key_id()
        if new_id in self._keys:
            raise InvalidInput("an encryption key with this id exists", details={"key_id": new_id})
        _check_key(new_id, new_key)
        raw = {**self._raw, new_id: new_key}
        if self._key_file is not None:
            _write_key_file(self._key_file, _key_document(raw, new_id))
        self._raw = raw
        self._keys[new_id] = AESGCM(new_key)
        self._current = new_id
        _log.info("encryption.key_rotated", key_id=new_id, key_count=len(raw))
        return new_id

    # --- values ------------------------------------------------------------------

    def encrypt(self, plaintext: str, *, aad: str | bytes | None = None) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext.encode(), _aad_bytes(aad))
        payload = base64.b64encode(nonce + sealed).decode("ascii")
        return f"{_VERSION}:{self._current}:{payload}"

    def decrypt(self, ciphertext: str, *, aad: str | bytes | None = None) -> str:
        key_id, blob = self._parse(ciphertext)
        cipher = self._keys.get(key_id)
        if cipher is None:
            raise InvalidInput(
                "the value was encrypted with a key this installation does not hold",
                details={"key_id": key_id},
            )
        try:
            plain = cipher.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad_bytes(aad))
        except InvalidTag:
            raise InvalidInput(
                "the encrypted value failed authentication (tampered with, or wrong key)",
                details={"key_id": key_id},
            ) from None
        try:
            return plain.decode()
        except UnicodeDecodeError:
            raise InvalidInput("the decrypted value is not UTF-8 text") from None

    def key_id_of(self, ciphertext: str) -> str:
        """The id of the key a ciphertext was made with."""
        return self._parse(ciphertext)[0]

    def needs_reencryption(self, ciphertext: str) -> bool:
        """Whether a value was made with an older key (re-encrypt it after a rotation)."""
        return self.key_id_of(ciphertext) != self._current

    @staticmethod
    def _parse(ciphertext: str) -> tuple[str, bytes]:
        parts = ciphertext.split(":")
        if len(parts) != 3 or parts[0] != _VERSION or not parts[1]:
            raise InvalidInput("the encrypted value is malformed (expected v1:<key id>:<data>)")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("the encrypted value is malformed (bad base64)") from None
        if len(blob) < _NONCE_BYTES + 16:
            raise InvalidInput("the encrypted value is malformed (too short)")
        return parts[1], blob

    def __repr__(self) -> str:
        return f"AesGcmEncryption(current_key_id={self._current!r}, keys={len(self._keys)})"


def _check_key(key_id: str, key: bytes) -> None:
    if not _KEY_ID_RE.fullmatch(key_id):
        raise InvalidInput(
            "an encryption key id must be 1-64 letters, digits, '_' or '-'",
            details={"key_id": key_id},
        )
    if len(key) != _KEY_BYTES:
        raise InvalidInput(
            "an AES-256 key must be 32 bytes", details={"key_id": key_id, "length": len(key)}
        )


def _key_document(keys: Mapping[str, bytes], current: str) -> str:
    encoded = {key_id: base64.b64encode(key).decode("ascii") for key_id, key in keys.items()}
    return json.dumps({"current": current, "keys": encoded}, indent=2) + "\n"


def _read_key_file(path: Path) -> tuple[dict[str, bytes], str]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        _log.warning("encryption.key_file_readable_by_others", path=str(path), mode=oct(mode))
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        current = document["current"]
        keys = {
            str(key_id): base64.b64decode(value, validate=True)
            for key_id, value in dict(document["keys"]).items()
        }
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidInput(
            f"the encryption key file {path} cannot be read: {type(exc).__name__}",
            details={"path": str(path)},
        ) from None
    if not isinstance(current, str):
        raise InvalidInput(
            f"the encryption key file {path} has no current key id", details={"path": str(path)}
        )
    return keys, current


def _write_key_file(path: Path, document: str) -> None:
    """Replace the key file atomically, keeping mode 0600."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(document)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
