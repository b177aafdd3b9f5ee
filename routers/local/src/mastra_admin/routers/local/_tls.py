"""HTTPS for local use: a local certificate authority and a certificate per host name.

A wildcard cannot cover ``{project}-{branch}.{team}.localhost`` (two labels below the
base domain), so the router signs a certificate for each host name the first time a
browser asks for it (TLS SNI). Trust ``ca.pem`` once and every deployment's URL is
valid. All keys are ECDSA P-256 (fast to make) and written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import ssl
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LocalCertificateAuthority", "server_context"]

_log = structlog.get_logger("mastra_admin.routers.local")

_SAFE_NAME = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$")
_CA_DAYS = 3650
_LEAF_DAYS = 397  # browsers refuse server certificates valid for more than 398 days


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class LocalCertificateAuthority:
    """A CA kept in ``directory`` (``ca.pem``, ``ca-key.pem``) that signs host
    certificates under ``base_domain`` on demand."""

    def __init__(self, directory: Path, base_domain: str) -> None:
        self.directory = directory
        self.base_domain = base_domain
        self._ca_key: ec.EllipticCurvePrivateKey | None = None
        self._ca_cert: x509.Certificate | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    @property
    def ca_file(self) -> Path:
        """The certificate to trust (browser, ``curl --cacert``, ``SSL_CERT_FILE``)."""
        return self.directory / "ca.pem"

    def load_or_create(self) -> None:
        key_file = self.directory / "ca-key.pem"
        if self.ca_file.exists() and key_file.exists():
            self._ca_cert = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_file} is not an ECDSA key")
            self._ca_key = key
            return
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MastraAdmin"),
                x509.NameAttribute(
                    NameOID.COMMON_NAME, f"MastraAdmin local CA ({self.base_domain})"
                ),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(key_file, _key_pem(key))
        _write_private(self.ca_file, cert.public_bytes(serialization.Encoding.PEM))
        self._ca_key, self._ca_cert = key, cert
        _log.info("router.tls_ca_created", ca_file=str(self.ca_file))

    def _issue(self, names: list[str]) -> Path:
        """Sign a certificate for ``names``; return the PEM file (chain + key)."""
        assert self._ca_key is not None
        assert self._ca_cert is not None
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        label = names[0].replace("*", "_wildcard")
        path = self.directory / "hosts" / f"{label}.pem"
        pem = (
            cert.public_bytes(serialization.Encoding.PEM)
            + self._ca_cert.public_bytes(serialization.Encoding.PEM)
            + _key_pem(key)
        )
        _write_private(path, pem)
        return path

    def _context_for(self, names: list[str]) -> ssl.SSLContext:
        context = self._contexts.get(names[0])
        if context is None:
            context = server_context(self._issue(names))
            self._contexts[names[0]] = context
        return context

    def ssl_context(self) -> ssl.SSLContext:
        """The listener's context: the base domain's certificate by default, a host's
        own certificate chosen by SNI."""
        self.load_or_create()
        default = self._context_for([self.base_domain, f"*.{self.base_domain}"])
        default.sni_callback = self._on_server_name
        return default

    def _on_server_name(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        if server_name is None:
            return
        name = server_name.lower().rstrip(".")
        suffix = "." + self.base_domain
        if not name.endswith(suffix) or _SAFE_NAME.match(name) is None or len(name) > 253:
            return
        try:
            connection.context = self._context_for([name])
        except (OSError, ValueError) as exc:
            _log.warning("router.tls_issue_failed", host=name, error=str(exc))


def server_context(chain_file: Path, key_file: Path | None = None) -> ssl.SSLContext:
    """A TLS server context for a PEM certificate chain (and its key, if separate)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(chain_file), str(key_file) if key_file else None)
    return context
