"""AES-256-GCM encryption: round trips, key ids, rotation, tamper detection, key files."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from mastra_admin.core.encryption import AesGcmEncryption
from mastra_admin.core.errors import InvalidInput


def make() -> AesGcmEncryption:
    return AesGcmEncryption({"k1": AesGcmEncryption.generate_key()}, "k1")


def test_round_trip_and_format() -> None:
    enc = make()
    ciphertext = enc.encrypt("postgres://user:pä55@db/app")
    version, key_id, payload = ciphertext.split(":")
    assert (version, key_id) == ("v1", "k1")
    assert len(base64.b64decode(payload)) == 12 + len("postgres://user:pä55@db/app".encode()) + 16
    assert enc.decrypt(ciphertext) == "postgres://user:pä55@db/app"
    assert enc.encrypt("") != enc.encrypt(""), "every value has its own nonce"
    assert enc.decrypt(enc.encrypt("")) == ""


def test_associated_data_binds_a_value_to_its_place() -> None:
    enc = make()
    ciphertext = enc.encrypt("secret", aad="project-1/API_KEY")
    assert enc.decrypt(ciphertext, aad="project-1/API_KEY") == "secret"
    with pytest.raises(InvalidInput, match="failed authentication"):
        enc.decrypt(ciphertext, aad="project-2/API_KEY")
    with pytest.raises(InvalidInput):
        enc.decrypt(ciphertext)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-4] + ("AAAA" if not c.endswith("AAAA") else "BBBB"),
        lambda c: c.replace("v1:", "v2:"),
        lambda c: c.split(":", 1)[1],
        lambda c: c + "!!",
        lambda c: "v1:k1:" + base64.b64encode(b"short").decode(),
        lambda c: "v1::" + c.split(":")[2],
    ],
    ids=["flipped-bytes", "unknown-version", "no-version", "bad-base64", "too-short", "no-key-id"],
)
def test_tampered_or_malformed_ciphertext_is_refused(mangle: object) -> None:
    enc = make()
    ciphertext = enc.encrypt("value")
    with pytest.raises(InvalidInput):
        enc.decrypt(mangle(ciphertext))  # type: ignore[operator]


def test_a_value_from_another_installation_is_refused() -> None:
    ours, theirs = make(), make()
    with pytest.raises(InvalidInput, match="failed authentication"):
        ours.decrypt(theirs.encrypt("value"))
    other_id = AesGcmEncryption({"k9": AesGcmEncryption.generate_key()}, "k9")
    with pytest.raises(InvalidInput, match="does not hold") as caught:
        ours.decrypt(other_id.encrypt("value"))
    assert caught.value.details == {"key_id": "k9"}


def test_rotation_keeps_old_values_readable() -> None:
    enc = make()
    old = enc.encrypt("old value")
    new_id = enc.rotate()
    assert enc.current_key_id == new_id != "k1"
    new = enc.encrypt("new value")
    assert enc.key_id_of(new) == new_id
    assert enc.decrypt(old) == "old value"
    assert enc.decrypt(new) == "new value"
    assert enc.needs_reencryption(old)
    assert not enc.needs_reencryption(new)
    with pytest.raises(InvalidInput, match="exists"):
        enc.rotate(key_id=new_id)


def test_keys_are_validated() -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        AesGcmEncryption({"k1": b"short"}, "k1")
    with pytest.raises(InvalidInput, match="names no key"):
        AesGcmEncryption({"k1": AesGcmEncryption.generate_key()}, "k2")
    with pytest.raises(InvalidInput, match="key id"):
        AesGcmEncryption({"a:b": AesGcmEncryption.generate_key()}, "a:b")
    with pytest.raises(InvalidInput, match="at least one"):
        AesGcmEncryption({}, "k1")


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "encryption-keys.json"
    first = AesGcmEncryption.from_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["current"] == first.current_key_id
    assert len(base64.b64decode(document["keys"][first.current_key_id])) == 32
    ciphertext = first.encrypt("kept across restarts")
    second = AesGcmEncryption.from_key_file(path)
    assert second.current_key_id == first.current_key_id
    assert second.decrypt(ciphertext) == "kept across restarts"


def test_rotation_is_persisted_to_the_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    enc = AesGcmEncryption.from_key_file(path)
    old = enc.encrypt("before")
    new_id = enc.rotate()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"], "no temp file left"
    reloaded = AesGcmEncryption.from_key_file(path)
    assert reloaded.current_key_id == new_id
    assert reloaded.decrypt(old) == "before"
    assert reloaded.key_ids == sorted([enc.key_id_of(old), new_id])


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    os.chmod(path, 0o600)
    with pytest.raises(InvalidInput, match="cannot be read") as caught:
        AesGcmEncryption.from_key_file(path)
    assert str(path) in caught.value.message
