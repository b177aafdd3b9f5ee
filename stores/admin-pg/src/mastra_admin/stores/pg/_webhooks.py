"""Webhook deliveries already acted on (``admin_webhook_deliveries``), so that a
replay is refused. The primary key (source, delivery_id) makes ``remember`` atomic:
of two racing inserts of one delivery exactly one returns a row."""

from __future__ import annotations

from datetime import datetime

from mastra_admin.core.storage import WebhookDeliveryStore

from ._db import Database

__all__ = ["PgWebhookDeliveryStore"]

_REMEMBER = (
    "INSERT INTO {schema}.admin_webhook_deliveries (source, delivery_id, received_at)"
    " VALUES (%s, %s, %s) ON CONFLICT (source, delivery_id) DO NOTHING RETURNING 1 AS new"
)


class PgWebhookDeliveryStore(WebhookDeliveryStore):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def remember(self, source: str, delivery_id: str, received_at: datetime) -> bool:
        row = await self._db.fetch_one(_REMEMBER, (source, delivery_id, received_at))
        return row is not None

    async def forget_before(self, before: datetime) -> int:
        return await self._db.execute(
            "DELETE FROM {schema}.admin_webhook_deliveries WHERE received_at < %s", (before,)
        )
