"""Encryption of secrets at rest (env var values): the interface and AES-256-GCM."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

__all__ = ["EncryptionProvider"]


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
