"""Email: how invites reach people. The built-in provider logs instead of sending."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, Field

__all__ = ["EmailMessage", "EmailProvider"]


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
