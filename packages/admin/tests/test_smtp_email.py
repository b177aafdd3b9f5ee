"""SmtpEmailProvider against a real SMTP server (aiosmtpd): plain, STARTTLS and TLS,
with a login over TLS; hostile recipients and subjects refused before anything is
sent; a server that is down or refuses the login is ``Unavailable``, and the
password never shows in the error."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr, ValidationError

from mastra_admin.core.email import EmailMessage
from mastra_admin.core.errors import InvalidInput, Unavailable
from mastra_admin.core.plugins import PluginManager
from mastra_admin.core.smtp_email import SmtpEmailProvider, SmtpEmailSettings

USER, PASSWORD = "mailer", "s3cret-Pässword-42"
SENDER = "MastraAdmin <noreply@example.com>"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    login: bytes | None


@dataclass
class Mailbox:
    """The aiosmtpd handler: keeps every message it accepts."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                login=login,
            )
        )
        return "250 OK"


def _authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, fit to be its own CA
    (key usage and key identifiers, as the strict verification of newer Pythons
    wants)."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp test server")])
    now = datetime.now(UTC)
    identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(identifier, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.crt", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox


@pytest.fixture
def start_server() -> Iterator[Any]:
    """Start an aiosmtpd server on a free port (``start(**smtp_options)``); every
    server started is stopped after the test."""
    controllers: list[Controller] = []

    def start(**options: Any) -> SmtpServer:
        mailbox = Mailbox()
        port = _free_port()
        controller = Controller(
            mailbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True, **options
        )
        controller.start()
        controllers.append(controller)
        return SmtpServer(port=port, mailbox=mailbox)

    yield start
    for controller in controllers:
        controller.stop()


def _provider(port: int, **settings: Any) -> SmtpEmailProvider:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": SENDER,
        "timeout_s": 5,
    }
    values.update(settings)
    return SmtpEmailProvider(SmtpEmailSettings.model_validate(values))


INVITE = EmailMessage(
    to="ana@example.com",
    subject="Einladung: Zürich-Team 🚀",
    text="Hallo Ana,\n\ndu bist eingeladen: https://admin.example.com/invite/abc\n\n— Grüße",
)


def _assert_is_the_invite(received: Received) -> None:
    message = received.message
    assert received.mail_from == "noreply@example.com"
    assert received.rcpt_tos == ["ana@example.com"]
    assert message["From"] == SENDER
    assert message["To"] == "ana@example.com"
    assert message["Subject"] == INVITE.subject
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    # SMTP carries lines ended by CRLF.
    assert message.get_content().replace("\r\n", "\n").rstrip("\n") == INVITE.text
    assert message["Message-ID"].endswith("@example.com>")


async def test_a_message_reaches_a_plain_server_with_utf8_subject_and_body(
    start_server: Any,
) -> None:
    server = start_server()

    await _provider(server.port).send(INVITE)

    [received] = server.mailbox.received
    _assert_is_the_invite(received)
    assert received.login is None


async def test_starttls_is_required_and_the_server_certificate_checked(
    start_server: Any, certificate: Certificate
) -> None:
    server = start_server(tls_context=certificate.server_context(), require_starttls=True)

    await _provider(server.port, security="starttls", ca_file=certificate.cert_file).send(INVITE)

    _assert_is_the_invite(server.mailbox.received[0])


async def test_an_untrusted_certificate_is_unavailable(
    start_server: Any, certificate: Certificate
) -> None:
    server = start_server(tls_context=certificate.server_context(), require_starttls=True)

    with pytest.raises(Unavailable) as caught:
        await _provider(server.port, security="starttls").send(INVITE)

    assert "certificate" in caught.value.message.lower()
    assert server.mailbox.received == []


async def test_a_server_without_starttls_gets_nothing_in_clear(start_server: Any) -> None:
    server = start_server()

    with pytest.raises(Unavailable, match="STARTTLS"):
        await _provider(server.port, security="starttls").send(INVITE)

    assert server.mailbox.received == []


async def test_implicit_tls(start_server: Any, certificate: Certificate) -> None:
    server = start_server(ssl_context=certificate.server_context())

    await _provider(server.port, security="tls", ca_file=certificate.cert_file).send(INVITE)

    _assert_is_the_invite(server.mailbox.received[0])


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
async def test_login_over_starttls(
    start_server: Any, certificate: Certificate, mechanism: str
) -> None:
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[mechanism]
    server = start_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=True,
        auth_exclude_mechanism=[other],
    )
    provider = _provider(
        server.port,
        security="starttls",
        ca_file=certificate.cert_file,
        username=USER,
        password=PASSWORD,
    )

    await provider.send(INVITE)

    [received] = server.mailbox.received
    _assert_is_the_invite(received)
    assert received.login == USER.encode()


async def test_a_wrong_password_is_unavailable_and_never_shown(
    start_server: Any, certificate: Certificate
) -> None:
    server = start_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    wrong = "wrong-" + PASSWORD
    provider = _provider(
        server.port,
        security="starttls",
        ca_file=certificate.cert_file,
        username=USER,
        password=wrong,
    )

    with pytest.raises(Unavailable) as caught:
        await provider.send(INVITE)

    error = caught.value
    assert "login refused" in error.message
    assert error.details["smtp_code"] == 535
    for text in (str(error), repr(error), str(error.to_dict()), repr(provider.settings)):
        assert wrong not in text
        assert PASSWORD not in text
    assert error.__cause__ is None
    assert server.mailbox.received == []


async def test_a_server_that_is_down_is_unavailable() -> None:
    provider = _provider(_free_port())

    with pytest.raises(Unavailable) as caught:
        await provider.send(INVITE)

    assert caught.value.code == "unavailable"
    assert caught.value.details["host"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("ana@example.com", "Invite\r\nBcc: eve@example.com"),
        ("ana@example.com", "Invite\nX-Injected: 1"),
        ("ana@example.com", "Invite\x00"),
        ("a@b.com, c@d.com", "Invite"),
        ("a@b.com; c@d.com", "Invite"),
        ("x\r\nBcc: y@z", "Invite"),
        ("ana@example.com\r\nBcc: eve@example.com", "Invite"),
        ("Eve <eve@example.com>", "Invite"),
        ('"ana@example.com" <eve@example.com>', "Invite"),
        ("ana@example.com (eve@example.com)", "Invite"),
        ("", "Invite"),
    ],
)
async def test_hostile_recipients_and_subjects_are_refused_and_nothing_is_sent(
    start_server: Any, to: str, subject: str
) -> None:
    server = start_server()
    message = EmailMessage(to=to, subject=subject, text="hello")

    with pytest.raises(InvalidInput) as caught:
        await _provider(server.port).send(message)

    assert caught.value.details["field"] in ("to", "subject")
    assert caught.value.to_dict()["code"] == "invalid_input"
    assert server.mailbox.received == []


def test_a_password_is_never_sent_without_tls() -> None:
    with pytest.raises(ValidationError, match="over TLS only"):
        SmtpEmailSettings(
            host="mail.example.com",
            security="none",
            from_address=SENDER,
            username=USER,
            password=SecretStr(PASSWORD),
        )
    with pytest.raises(ValidationError, match="together"):
        SmtpEmailSettings(host="mail.example.com", from_address=SENDER, username=USER)
    with pytest.raises(ValidationError, match="one line"):
        SmtpEmailSettings(host="mail.example.com", from_address="a@example.com\r\nBcc: b@c.d")
    with pytest.raises(ValidationError):
        SmtpEmailSettings(host="mail.example.com", from_address=SENDER, hots="typo")  # type: ignore[call-arg]


def test_the_builtin_plugin_offers_smtp() -> None:
    spec = PluginManager().get_provider("email", "smtp")

    assert spec.settings_model is SmtpEmailSettings
    assert SmtpEmailProvider.type == "smtp"
