"""Billing: a hook for metered use. The built-in provider bills nothing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

__all__ = ["BillingProvider", "NoBillingProvider"]


class BillingProvider(ABC):
    type: ClassVar[str]

    @abstractmethod
    async def record_usage(self, team_id: str, metric: str, quantity: float) -> None:
        """Record use of a metered resource (build minutes, deployments)."""

    @abstractmethod
    async def can_use(self, team_id: str, metric: str) -> bool:
        """Whether the team may use more of ``metric`` now."""


class NoBillingProvider(BillingProvider):
    """Self-hosted installations bill nothing: usage is ignored and always allowed."""

    type: ClassVar[str] = "none"

    async def record_usage(self, team_id: str, metric: str, quantity: float) -> None:
        return None

    async def can_use(self, team_id: str, metric: str) -> bool:
        return True
