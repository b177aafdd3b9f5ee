"""What Caddy (certmagic) keeps of a host's certificate in its storage dir.

certmagic stores each certificate as ``certificates/{issuer}/{host}/{host}.crt``
(issuer ``local`` for the internal CA, the ACME directory's host and path for ACME),
and holds ``locks/issue_cert_{host}.lock`` while it obtains one. Reading the files is
all it takes: no admin API for it exists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from mastra_admin.core.router import CertificateState

__all__ = ["certificate_in_file", "stored_certificate"]


def _names(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [n.lower() for n in ext.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        return [
            str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]


def _covers(pattern: str, hostname: str) -> bool:
    if pattern == hostname:
        return True
    if pattern.startswith("*."):
        head, _, rest = hostname.partition(".")
        return bool(head) and rest == pattern[2:]
    return False


def _issuer(cert: x509.Certificate, fallback: str) -> str:
    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else fallback


def _state(cert: x509.Certificate, issuer: str) -> CertificateState:
    not_after = cert.not_valid_after_utc
    if not_after <= datetime.now(UTC):
        return CertificateState(
            state="failed", issuer=issuer, not_after=not_after, error="the certificate expired"
        )
    return CertificateState(state="issued", issuer=issuer, not_after=not_after)


def _read(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def stored_certificate(storage_root: Path, hostname: str) -> CertificateState | None:
    """The newest certificate certmagic holds for ``hostname`` (a canonical host name,
    checked by the caller: it becomes part of a path), ``pending`` while one is being
    obtained, ``None`` when there is neither."""
    best: tuple[datetime, CertificateState] | None = None
    for path in (storage_root / "certificates").glob(f"*/{hostname}/{hostname}.crt"):
        cert = _read(path)
        if cert is None or hostname not in _names(cert):
            continue
        state = _state(cert, _issuer(cert, path.parent.parent.name))
        if best is None or cert.not_valid_after_utc > best[0]:
            best = (cert.not_valid_after_utc, state)
    if best is not None:
        return best[1]
    if (storage_root / "locks" / f"issue_cert_{hostname}.lock").exists():
        return CertificateState(state="pending")
    return None


def certificate_in_file(cert_file: Path, hostname: str) -> CertificateState | None:
    """The supplied certificate's state when it covers ``hostname``."""
    cert = _read(cert_file)
    if cert is None:
        return CertificateState(state="failed", error=f"cannot read {cert_file.name}")
    if not any(_covers(name, hostname) for name in _names(cert)):
        return None
    return _state(cert, _issuer(cert, "files"))
