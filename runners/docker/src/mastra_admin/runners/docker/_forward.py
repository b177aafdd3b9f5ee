"""The collector, reachable from a deployment's network and nothing else of the host.

A container cannot reach the platform's loopback, where the collector listens by
default. For each deployment network the runner listens on that network's gateway
address, on the collector's port, and copies bytes to and from the collector: the one
service of the platform its containers reach (the API, PostgreSQL and the rest stay on
the loopback).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

__all__ = ["Forwarder"]

_log = structlog.get_logger("mastra_admin.runners.docker")
_CHUNK = 1 << 16


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


class Forwarder:
    """Listeners ``(gateway, port) -> (target_host, port)``, each shared by the servers
    of one network and closed when the last of them is gone."""

    def __init__(self, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self._listeners: dict[tuple[str, int], asyncio.Server] = {}
        self._users: dict[tuple[str, int], set[str]] = {}

    async def open(self, gateway: str, port: int, user: str) -> None:
        key = (gateway, port)
        if key not in self._listeners:

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                try:
                    target_reader, target_writer = await asyncio.open_connection(
                        self.target_host, port
                    )
                except OSError as exc:
                    _log.warning("collector_forward.unreachable", port=port, error=str(exc))
                    writer.close()
                    return
                await asyncio.gather(_pipe(reader, target_writer), _pipe(target_reader, writer))

            self._listeners[key] = await asyncio.start_server(handle, gateway, port)
            _log.info("collector_forward.listening", gateway=gateway, port=port)
        self._users.setdefault(key, set()).add(user)

    async def release(self, user: str) -> None:
        for key in [k for k, users in self._users.items() if user in users]:
            users = self._users[key]
            users.discard(user)
            if not users:
                del self._users[key]
                server = self._listeners.pop(key)
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 1.0)

    async def close(self) -> None:
        for server in self._listeners.values():
            server.close()
        self._listeners.clear()
        self._users.clear()
