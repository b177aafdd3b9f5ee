"""The health probe: one HTTP/1.1 GET on a fresh connection, the status code read back.

A few lines over ``asyncio.open_connection`` rather than an HTTP client: the runner
probes every server every few seconds, and this costs one socket and no pool.
"""

from __future__ import annotations

import asyncio

__all__ = ["probe"]


async def probe(host: str, port: int, path: str, *, timeout_s: float) -> int | None:
    """The HTTP status of ``GET path``, or ``None`` when the server does not answer."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                target = path if path.startswith("/") else "/" + path
                host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                writer.write(
                    f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\n"
                    "User-Agent: mastra-admin-runner\r\nConnection: close\r\n\r\n".encode("ascii")
                )
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass
    except (OSError, TimeoutError, UnicodeEncodeError):
        return None
    parts = status_line.split(maxsplit=2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None
