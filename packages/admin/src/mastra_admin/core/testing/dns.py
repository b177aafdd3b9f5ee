"""``LocalDnsServer``: a real DNS server on 127.0.0.1 for tests of custom domains.

It listens on one random port for UDP and TCP (``dnslib``'s server, in threads) and
answers from records the test sets, so verification runs through a real resolver,
real packets and real timeouts, and never asks DNS outside the machine::

    with LocalDnsServer() as dns:
        dns.set_txt("_mastra-admin.shop.example.com", token)
        settings = MastraAdminSettings(domains={"resolver": [dns.address]})

A name with records answers them; a name marked with ``add_name`` exists without
TXT records (NOERROR, no answer); ``fail`` makes a name answer SERVFAIL; every other
name is NXDOMAIN. ``silent_nameserver`` is an address that takes queries and never
answers (a resolver timing out). Needs ``dnslib`` (the ``testing`` extra).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

__all__ = ["LocalDnsServer", "silent_nameserver"]


_PORT_ATTEMPTS = 20
"""How many port numbers a server listening on UDP and TCP tries: the kernel picks a
free UDP port, but UDP and TCP ports are separate spaces, so the TCP port of that
number may be held by any process on the machine (a connection, a listener, a socket
in TIME_WAIT); then another number is tried."""


def _key(name: str) -> str:
    return name.rstrip(".").lower()


class _TableResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, server: LocalDnsServer) -> None:
        self.server = server

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = _key(str(request.q.qname))
        with self.server.lock:
            self.server.queries.append((name, QTYPE[request.q.qtype]))
            if name in self.server.failing:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            values = self.server.txt.get(name)
            exists = values is not None or name in self.server.names
            if request.q.qtype == QTYPE.TXT and values:
                for value in values:
                    reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=0))
            elif not exists:
                reply.header.rcode = RCODE.NXDOMAIN
        return reply


class LocalDnsServer:
    """A DNS server answering from ``txt`` (name -> values), on ``address``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.lock = threading.Lock()
        self.txt: dict[str, list[str]] = {}
        self.names: set[str] = set()
        self.failing: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self._servers: list[DNSServer] = []
        self.port = 0

    @property
    def address(self) -> str:
        """``host:port``, as ``domains.resolver`` takes it."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        resolver = _TableResolver(self)
        logger = DNSLogger(log="-request,-reply,-truncated,-error", logf=lambda _text: None)
        for _attempt in range(_PORT_ATTEMPTS):
            udp = DNSServer(resolver, address=self.host, port=0, logger=logger)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(resolver, address=self.host, port=port, tcp=True, logger=logger)
            except OSError:  # the TCP port of that number is taken: another number
                udp.server.server_close()
                continue
            self._servers = [udp, tcp]
            self.port = port
            for server in self._servers:
                server.start_thread()
            return
        raise OSError("no port was free for both UDP and TCP")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> LocalDnsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the records -------------------------------------------------------------------

    def set_txt(self, name: str, *values: str) -> None:
        """``name`` answers these TXT records (none: it exists without any)."""
        with self.lock:
            if values:
                self.txt[_key(name)] = list(values)
            else:
                self.txt.pop(_key(name), None)
                self.names.add(_key(name))

    def add_name(self, name: str) -> None:
        """``name`` exists, with no TXT record."""
        self.set_txt(name)

    def fail(self, name: str) -> None:
        """``name`` answers SERVFAIL."""
        with self.lock:
            self.failing.add(_key(name))

    def clear(self) -> None:
        """Forget every record and query."""
        with self.lock:
            self.txt.clear()
            self.names.clear()
            self.failing.clear()
            self.queries.clear()


@contextlib.contextmanager
def silent_nameserver(host: str = "127.0.0.1") -> Iterator[str]:
    """``host:port`` of a nameserver that receives queries (UDP and TCP) and never
    answers: what a resolver sees of a DNS server that hangs."""
    udp, tcp = _udp_and_tcp_on_one_port(host)
    with udp, tcp:
        tcp.listen()
        yield f"{host}:{udp.getsockname()[1]}"


def _udp_and_tcp_on_one_port(host: str) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same free port of ``host`` (see
    ``_PORT_ATTEMPTS``)."""
    for _attempt in range(_PORT_ATTEMPTS):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind((host, 0))
            tcp.bind((host, udp.getsockname()[1]))
        except OSError as exc:
            udp.close()
            tcp.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        return udp, tcp
    raise OSError(errno.EADDRINUSE, "no port was free for both UDP and TCP")
