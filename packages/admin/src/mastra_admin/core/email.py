"""Email: how invites reach people. The built-in provider logs instead of sending."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import structlog
from pydantic import BaseModel, Field

__all__ = ["ConsoleEmailProvider", "EmailMessage", "EmailProvider"]

_log = structlog.get_logger("mastra_admin.core.email")


class EmailMessage(BaseModel):
    to: str
    subject: str
    text: str
    template: str | None = None
    data: dict[str, object] = Field(default_factory=dict)


class EmailProvider(ABC):
    type: ClassVar[str]

    @abstractmethod
    async def send(self, message: EmailMessage) -> None: ...


class ConsoleEmailProvider(EmailProvider):
    """Writes every message to the log instead of sending it, and keeps it in
    ``sent`` (newest last) so that tests and a local operator can read it.

    The message text is logged in full: on a laptop that is how an invite link
    reaches the person being invited. Use a real provider where logs are shared.
    """

    type: ClassVar[str] = "console"

    def __init__(self, *, keep: int = 1000) -> None:
        self.sent: list[EmailMessage] = []
        self._keep = keep

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)
        del self.sent[: max(0, len(self.sent) - self._keep)]
        _log.info(
            "email.sent",
            to=message.to,
            subject=message.subject,
            template=message.template,
            text=message.text,
        )
