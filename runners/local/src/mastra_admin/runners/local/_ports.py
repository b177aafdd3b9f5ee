"""Ports for servers: a range, minus the ports this runner handed out, minus the ports
anything on the machine already holds (checked by binding)."""

from __future__ import annotations

import socket

from mastra_admin.core.errors import BuildFailed

__all__ = ["PortAllocator", "port_is_free"]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now.

    ``SO_REUSEADDR`` as node sets it, so that a port whose last connections linger
    in TIME_WAIT counts as free, as it is for the server.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out ports of ``[start, end]`` one at a time, lowest free first."""

    def __init__(self, host: str, start: int, end: int) -> None:
        self.host = host
        self.start = start
        self.end = end
        self._taken: set[int] = set()

    @property
    def taken(self) -> frozenset[int]:
        return frozenset(self._taken)

    def allocate(self) -> int:
        """A free port, now reserved; ``BuildFailed`` (step ``start``) when none is left."""
        for port in range(self.start, self.end + 1):
            if port in self._taken:
                continue
            if port_is_free(self.host, port):
                self._taken.add(port)
                return port
        size = self.end - self.start + 1
        raise BuildFailed(
            "start",
            f"no free port for the server: all {size} ports of {self.start}-{self.end} "
            f"on {self.host} are in use ({len(self._taken)} by servers of this runner)",
            details={"port_range": [self.start, self.end], "held_by_runner": len(self._taken)},
        )

    def reserve(self, port: int) -> None:
        """Mark a port as used by a server this runner adopted (recovery)."""
        self._taken.add(port)

    def release(self, port: int) -> None:
        self._taken.discard(port)
