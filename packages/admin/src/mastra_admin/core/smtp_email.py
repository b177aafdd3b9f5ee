"""E-mail over SMTP: the provider that really sends, through any mail server or relay.

Messages are plain text in UTF-8, built with the standard library's
``email.message.EmailMessage`` so that headers are encoded, folded and quoted by the
library that knows the rules, never by string concatenation. The recipient and the
subject are treated as hostile: one plain address, a subject on one line.
"""

from __future__ import annotations

import ssl
import unicodedata
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from mastra_admin.core.email import EmailMessage, EmailProvider
from mastra_admin.core.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    from email_validator import ValidatedEmail

__all__ = ["SmtpEmailProvider", "SmtpEmailSettings"]

_log = structlog.get_logger("mastra_admin.core.smtp_email")

Security = Literal["starttls", "tls", "none"]


class SmtpEmailSettings(BaseModel):
    """Where the mail server is and how to talk to it.

    A password is only ever sent over TLS: ``security = "none"`` with a password is a
    settings error rather than a silent plain-text login.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = Field(min_length=1, description="Mail server (or relay) host name or address.")
    port: int = Field(
        default=587, ge=1, le=65535, description="Mail server port (587 submission, 465 TLS)."
    )
    security: Security = Field(
        default="starttls",
        description="`starttls`: plain connection upgraded with STARTTLS (required, not "
        "opportunistic); `tls`: TLS from the first byte (port 465); `none`: no encryption "
        "(a relay on the same host or network only, and no password).",
    )
    username: str | None = Field(default=None, description="Login name, when the server wants one.")
    password: SecretStr | None = Field(
        default=None, description="Login password; sent over TLS only, never logged."
    )
    from_address: str = Field(
        description="Sender of every message: an address, optionally with a display name "
        "(`MastraAdmin <noreply@example.com>`)."
    )
    timeout_s: float = Field(
        default=30.0, gt=0, description="Timeout of each step of the SMTP conversation."
    )
    validate_certs: bool = Field(
        default=True,
        description="Check the server's certificate and host name (turn off only for a "
        "test server; prefer `ca_file`).",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of certificate authorities to trust instead of the system's "
        "(a private CA or a self-signed server certificate).",
    )

    @field_validator("from_address")
    @classmethod
    def _one_sender(cls, value: str) -> str:
        _parse_sender(value)
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SmtpEmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        if self.password is not None and self.security == "none":
            raise ValueError(
                "a password is sent over TLS only: set security to 'starttls' or 'tls'"
            )
        return self


def _parse_sender(value: str) -> Address:
    """The settings' sender as a header address; ``ValueError`` says what is wrong."""
    # Imported here: every process loads the built-in plugin, few send mail (40 ms).
    from email_validator import EmailNotValidError, validate_email

    if _has_control_characters(value):
        raise ValueError("the sender address must be on one line")
    try:
        parsed = validate_email(value, check_deliverability=False, allow_display_name=True)
    except EmailNotValidError as exc:
        raise ValueError(f"not an e-mail address: {exc}") from None
    return Address(display_name=parsed.display_name or "", addr_spec=_envelope_address(parsed))


def _envelope_address(parsed: ValidatedEmail) -> str:
    # ``ascii_email`` is the IDNA form of an internationalised domain; it is None when
    # the local part itself needs SMTPUTF8, which aiosmtplib then asks the server for.
    return parsed.ascii_email or parsed.normalized


def _has_control_characters(text: str) -> bool:
    """CR, LF or any other control or line/paragraph separator (tab excepted): what
    could end a header line early in some parser along the way."""
    return any(c != "\t" and unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def _recipient(value: str) -> str:
    """The one plain address ``value`` must be, or ``InvalidInput``.

    No display name, no list, no comment, no quoted local part: whatever else a
    header parser would make of it could add a recipient nobody asked for.
    """
    from email_validator import EmailNotValidError, validate_email

    if _has_control_characters(value):
        raise InvalidInput(
            "the recipient must be one e-mail address on one line",
            details={"field": "to", "reason": "line_break"},
        )
    try:
        parsed = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            f"the recipient is not one plain e-mail address: {exc}",
            details={"field": "to", "reason": "not_an_address"},
        ) from None
    return _envelope_address(parsed)


def _tls_context(settings: SmtpEmailSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(
            f"email.ca_file cannot be read as PEM certificates: {exc}",
            details={"field": "email.ca_file"},
        ) from None
    if not settings.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SmtpEmailProvider(EmailProvider):
    """Sends each message in its own SMTP session (connect, TLS, login, send, quit).

    Invites and notifications are rare, so a connection per message costs little and
    leaves nothing open to go stale between them. Failures of the server (down,
    refusing the login, the sender or the recipient) are ``Unavailable``; input that
    could change who receives the message is ``InvalidInput`` and nothing is sent.
    """

    type: ClassVar[str] = "smtp"

    def __init__(self, settings: SmtpEmailSettings) -> None:
        self.settings = settings
        self._sender = _parse_sender(settings.from_address)
        # The TLS context reads ca_file once, here, rather than on every message.
        self._tls = _tls_context(settings) if settings.security != "none" else None

    def build(self, message: EmailMessage) -> MimeMessage:
        """The MIME message that ``send`` would send, after the hostile-input checks."""
        to = _recipient(message.to)
        if _has_control_characters(message.subject):
            raise InvalidInput(
                "the subject must be one line (no CR, LF or other control characters)",
                details={"field": "subject", "reason": "line_break"},
            )
        mime = MimeMessage()
        mime["From"] = self._sender
        mime["To"] = to
        mime["Subject"] = message.subject
        mime["Date"] = formatdate(localtime=False, usegmt=True)
        mime["Message-ID"] = make_msgid(domain=self._sender.domain or None)
        mime.set_content(message.text, subtype="plain", charset="utf-8")
        return mime

    async def send(self, message: EmailMessage) -> None:
        # Imported on first send: every process loads the built-in plugin, and most
        # never send mail.
        import aiosmtplib

        mime = self.build(message)
        recipient = str(mime["To"])
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password else None
        try:
            await aiosmtplib.send(
                mime,
                sender=self._sender.addr_spec,
                recipients=[recipient],
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=password,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                tls_context=self._tls,
                timeout=settings.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = _describe(exc, password)
            _log.warning(
                "email.failed",
                provider=self.type,
                host=settings.host,
                port=settings.port,
                to=recipient,
                template=message.template,
                error=reason,
            )
            details: dict[str, object] = {"host": settings.host, "port": settings.port}
            if isinstance(exc, aiosmtplib.SMTPResponseException):
                details["smtp_code"] = exc.code
            # ``from None``: the chained exception would repeat what the server said in
            # a traceback; the message below carries all of it, scrubbed.
            raise Unavailable(
                f"the mail server {settings.host}:{settings.port} did not take the "
                f"message: {reason}",
                details=details,
            ) from None
        _log.info(
            "email.sent",
            provider=self.type,
            to=recipient,
            subject=message.subject,
            template=message.template,
        )


def _describe(exc: BaseException, password: str | None) -> str:
    """What went wrong, for people, without the password even if a server echoed it."""
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        text = f"login refused ({exc.code} {exc.message})"
    elif isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        text = "recipient refused: " + "; ".join(f"{e.code} {e.message}" for e in exc.recipients)
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
    elif isinstance(exc, TimeoutError):
        text = "timed out"
    else:
        text = str(exc) or type(exc).__name__
    if password:
        text = text.replace(password, "***")
    return " ".join(text.split())
