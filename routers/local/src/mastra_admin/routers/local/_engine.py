"""The proxy engine: HTTP/1.1 forwarding at the asyncio protocol level.

Each client connection parses its requests with llhttp (``httptools``). A request's
head goes to a pooled upstream connection as soon as it is parsed and its body
follows as it arrives; the upstream's answer is parsed the same way and written to
the client as it arrives, one write per upstream read. Nothing is buffered whole:
a full write buffer on one side pauses reading on the other (the transports' own
flow control), so memory stays flat whatever the body size, and SSE or chunked
answers reach the client chunk by chunk. An upgrade (WebSocket) answered with 101
turns both connections into a byte tunnel.

The per-request path is kept short on purpose (it is most of the proxy's CPU): one
dict lookup for the host, each header name lowered once and copied into the
outgoing head, no timer per request (a sweep enforces every timeout), request ids
from a counter rather than the system's random source.

Slow clients are the sweep's business too. Every ``sweep_interval_s`` it looks at
each client connection and at what it is doing: a request head still arriving must
be complete ``header_timeout_s`` after it began (however steadily it trickles in:
that is the slowloris attack), a request body must not stall for
``body_idle_timeout_s``, a connection between requests is closed after the
keep-alive. A connection waiting for or receiving an answer (an SSE stream) is timed
by the upstream's read timeout only, and a WebSocket tunnel by nothing. Progress is
read from what the request path records anyway (the request being received, whether
its head is complete) and from a count of body pieces, so timing a request costs two
attribute stores, no timer and no extra clock read; the price is precision: a limit
is enforced up to one sweep interval late. Each client address may hold
``max_connections_per_client`` connections at once, counted on accept and close.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import deque
from typing import Final, cast

import httptools
import structlog

from mastra_admin.routers.local._hosts import HostTable, Target, hostname_of, is_valid_host
from mastra_admin.routers.local._http import (
    REQUEST_SPECIAL,
    RESPONSE_SPECIAL,
    connection_tokens,
    drop_named,
)
from mastra_admin.routers.local._pages import error_response

__all__ = ["ProxyEngine"]

_log = structlog.get_logger("mastra_admin.routers.local")

_now = time.monotonic
_PENDING_LIMIT: Final = 256 * 1024  # request body held while the upstream connects
_MAX_IDLE_PER_TARGET: Final = 256
_MAX_REQUEST_ID: Final = 128
_IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_CHUNK_END: Final = b"0\r\n\r\n"
_COLON: Final = b": "
_CRLF: Final = b"\r\n"
_FOLLOW_REPOINTS: Final = 2
_MAX_HEAD: Final = 64 * 1024  # request line and headers
# Why the sweep closed a client connection (the keys of its log line).
_HEAD: Final = "header_timeout"
_BODY: Final = "body_idle_timeout"
_IDLE: Final = "keepalive_timeout"


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop an oversized request head."""


Key = tuple[str, int]


class ProxyEngine:
    """What every connection shares: the host table, the upstream pool and the
    settings. Calling it makes the protocol of a new client connection."""

    def __init__(
        self,
        table: HostTable,
        *,
        scheme: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        upstream_keepalive_s: float,
        client_keepalive_s: float,
        header_timeout_s: float,
        body_idle_timeout_s: float,
        max_connections_per_client: int = 0,
        max_upstream_connections: int = 0,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.table = table
        self.scheme = scheme.encode()
        self.read_timeout_s = read_timeout_s
        self.client_keepalive_s = client_keepalive_s
        self.header_timeout_s = header_timeout_s
        self.body_idle_timeout_s = body_idle_timeout_s
        self.max_per_client = max_connections_per_client
        # Open connections per client address (refused ones included until they close).
        self.per_client: dict[bytes, int] = {}
        # Connections refused and closed for slowness since the last sweep, so that an
        # attack makes one log line per sweep rather than one per connection.
        self.refused: dict[bytes, int] = {}
        self.timed_out: dict[str, int] = {}
        self.pool = UpstreamPool(
            self.loop,
            connect_timeout_s=connect_timeout_s,
            keepalive_s=upstream_keepalive_s,
            max_per_target=max_upstream_connections,
        )
        self.connections: set[ClientConnection] = set()
        self._id_prefix = os.urandom(8).hex().encode()
        self._ids = itertools.count()

    def __call__(self) -> ClientConnection:
        return ClientConnection(self)

    def request_id(self) -> bytes:
        """32 hex digits, unique per process run (a random prefix and a counter)."""
        return b"%s%016x" % (self._id_prefix, next(self._ids))

    @property
    def sweep_interval_s(self) -> float:
        """How often ``sweep`` should run: every timeout is enforced by it, so a
        quarter of the shortest keeps each one within 25% (and at most 1 s) of its
        setting."""
        return min(
            1.0,
            self.read_timeout_s / 4,
            self.header_timeout_s / 4,
            self.body_idle_timeout_s / 4,
            self.client_keepalive_s / 4,
        )

    def sweep(self) -> None:
        """Time out silent upstreams and slow or idle clients, close stale pooled
        upstream connections; log what was closed or refused since the last sweep."""
        now = _now()
        timed_out = self.timed_out
        for conn in list(self.connections):
            reason = conn.sweep(now)
            if reason is not None:
                timed_out[reason] = timed_out.get(reason, 0) + 1
        self.pool.sweep(now)
        timed_out.pop(_IDLE, None)  # the keep-alive ending is routine, not news
        if timed_out:
            _log.info("proxy.slow_clients_closed", **timed_out)
            timed_out.clear()
        if self.refused:
            worst = sorted(self.refused.items(), key=lambda item: -item[1])[:5]
            _log.warning(
                "proxy.connections_refused",
                limit=self.max_per_client,
                refused=sum(self.refused.values()),
                clients={peer.decode("latin-1"): n for peer, n in worst},
            )
            self.refused.clear()

    async def shutdown(self, grace_s: float) -> None:
        """Close idle connections now, give requests in flight ``grace_s``, then cut."""
        deadline = _now() + grace_s
        while True:
            for conn in list(self.connections):
                if not conn.exchanges and conn.tunnel is None:
                    conn.close()
            if not self.connections or _now() >= deadline:
                break
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        self.pool.close_all()


class UpstreamPool:
    """Keep-alive connections to upstreams, per (host, port); the most recently used
    first, none older than ``keepalive_s`` (below the upstream's own idle timeout,
    so that a connection the server is closing is never reused)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        connect_timeout_s: float,
        keepalive_s: float,
        max_per_target: int,
    ) -> None:
        self.loop = loop
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self.max_idle = max_per_target or _MAX_IDLE_PER_TARGET
        self.idle: dict[Key, list[UpstreamConnection]] = {}

    def take(self, key: Key) -> UpstreamConnection | None:
        idle = self.idle.get(key)
        if not idle:
            return None
        oldest = _now() - self.keepalive_s
        while idle:
            conn = idle.pop()
            if conn.idle_since >= oldest and not conn.closed:
                conn.reused = True
                return conn
            conn.close()
        return None

    async def connect(self, key: Key) -> UpstreamConnection:
        """A new connection; ``TimeoutError`` past the connect timeout, ``OSError`` when refused."""
        _, conn = await asyncio.wait_for(
            self.loop.create_connection(lambda: UpstreamConnection(self, key), key[0], key[1]),
            self.connect_timeout_s,
        )
        return conn

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        conn.exchange = None
        if not reusable or conn.closed:
            conn.close()
            return
        if conn.reading_paused:
            conn.resume_reading()
        idle = self.idle.get(conn.key)
        if idle is None:
            idle = self.idle[conn.key] = []
        elif len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = _now()
        idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        idle = self.idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    def sweep(self, now: float) -> None:
        oldest = now - self.keepalive_s
        for key, idle in list(self.idle.items()):
            keep = [c for c in idle if c.idle_since >= oldest and not c.closed]
            for conn in idle:
                if conn not in keep:
                    conn.close()
            if keep:
                self.idle[key] = keep
            else:
                del self.idle[key]

    def close_all(self) -> None:
        for idle in self.idle.values():
            for conn in idle:
                conn.close()
        self.idle.clear()


class UpstreamConnection(asyncio.Protocol):
    """One TCP connection to an upstream; serves one exchange at a time."""

    def __init__(self, pool: UpstreamPool, key: Key) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.tunnel: ClientConnection | None = None
        self.idle_since = 0.0
        self.activity = 0  # reads and writes: the sweep tells silence from progress
        self.reused = False
        self.closed = False
        self.write_paused = False
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.write(data)
            return
        exchange = self.exchange
        if exchange is None:
            self.close()  # an idle server does not talk; this one is out of step
            return
        self.activity += 1
        exchange.response_data(data)

    def eof_received(self) -> bool | None:
        return None  # close; connection_lost settles what the exchange needs

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self.tunnel is not None:
            tunnel, self.tunnel = self.tunnel, None
            tunnel.close()
            return
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.upstream_lost()
        else:
            self.pool.forget(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        peer = self.tunnel or (self.exchange.client if self.exchange else None)
        if peer is not None:
            peer.pause_reading("upstream")

    def resume_writing(self) -> None:
        self.write_paused = False
        peer = self.tunnel or (self.exchange.client if self.exchange else None)
        if peer is not None:
            peer.resume_reading("upstream")

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class ClientConnection(asyncio.Protocol):
    """One client connection: parses requests, runs their exchanges in order."""

    def __init__(self, engine: ProxyEngine) -> None:
        self.engine = engine
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = b""
        self.exchanges: deque[Exchange] = deque()
        self.receiving: Exchange | None = None
        self.tunnel: UpstreamConnection | None = None
        # Moved on by every finished exchange: while it equals ``opened`` the
        # connection has not been answered yet (and owes its first head).
        self.opened = self.idle_since = _now()
        # What the sweep last saw arriving (the request, -1 for its head or its body
        # reads so far) and since when: its clock for the header and body timeouts.
        self.watched: Exchange | None = None
        self.watched_mark = -1
        self.watched_since = 0.0
        self.write_paused = False
        self.closing = False
        self.tls = False
        self._pauses: set[str] = set()
        self._head_size = 0

    # --- transport events ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.tls = transport.get_extra_info("sslcontext") is not None
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple) and peername:
            self.peer = str(peername[0]).encode()
        engine = self.engine
        count = engine.per_client.get(self.peer, 0) + 1
        engine.per_client[self.peer] = count
        if 0 < engine.max_per_client < count:
            self._refuse()
            return
        engine.connections.add(self)

    def _refuse(self) -> None:
        """Past the per-client cap: answer 429 before any request and close. Nothing
        is read, so the connection costs no parsing and holds no state; a client that
        has not written its request yet reads the reason, one that has may see a reset
        instead (closing with unread data makes the kernel send one)."""
        engine = self.engine
        engine.refused[self.peer] = engine.refused.get(self.peer, 0) + 1
        self.closing = True
        self.write(
            error_response(
                429,
                "too_many_connections",
                f"This client already has {engine.max_per_client} connections open to "
                "the router; close one or retry later.",
                accept=b"",
                request_id=engine.request_id(),
                close=True,
            )
        )
        self.close()

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.write(data)
            return
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            exchange = self.exchanges[-1] if self.exchanges else None
            if exchange is not None:
                exchange.early_data = data[upgrade.args[0] :]
            # Nothing more is parsed on this connection: it becomes a tunnel or closes.
            self.pause_reading("upgrade")
        except httptools.HttpParserError:
            if self._head_size > _MAX_HEAD:
                self._malformed(
                    431, "request_head_too_large", "The request line and headers are too large."
                )
            else:
                self._malformed(400, "bad_request", "The request is not valid HTTP/1.1.")

    def eof_received(self) -> bool | None:
        if self.tunnel is not None or self.tls:
            return None  # TLS cannot stay half-open
        # A client may half-close after its request; answer it, then close.
        if self.exchanges:
            self.exchanges[-1].keep_alive = False
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closing = True
        engine = self.engine
        engine.connections.discard(self)
        count = engine.per_client.get(self.peer, 0) - 1
        if count > 0:
            engine.per_client[self.peer] = count
        else:
            engine.per_client.pop(self.peer, None)
        if self.tunnel is not None:
            tunnel, self.tunnel = self.tunnel, None
            tunnel.close()
        while self.exchanges:
            self.exchanges.popleft().abort()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.tunnel is not None:
            self.tunnel.pause_reading()
        elif self.exchanges:
            self.exchanges[0].client_paused()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.tunnel is not None:
            self.tunnel.resume_reading()
        elif self.exchanges:
            self.exchanges[0].client_resumed()

    # --- llhttp callbacks (request) ----------------------------------------------

    def on_message_begin(self) -> None:
        self.receiving = Exchange(self)
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        exchange = self.receiving
        if exchange is not None:
            exchange.path += url
            self._head_size += len(url)
            if self._head_size > _MAX_HEAD:
                raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self.receiving
        if exchange is None:
            return
        self._head_size += len(name) + len(value) + 4
        if self._head_size > _MAX_HEAD:
            raise _HeadTooLarge
        n = name.lower()
        if n in REQUEST_SPECIAL:
            exchange.request_header(n, name, value)
        else:
            exchange.parts += (name, _COLON, value, _CRLF)

    def on_headers_complete(self) -> None:
        exchange = self.receiving
        if self.closing or exchange is None:
            self.receiving = None
            return
        parser = self.parser
        exchange.method = parser.get_method()
        exchange.http11 = parser.get_http_version() == "1.1"
        exchange.keep_alive = parser.should_keep_alive()
        exchange.upgrade = parser.should_upgrade()
        self.exchanges.append(exchange)
        if len(self.exchanges) == 1:
            exchange.start()
        else:
            # Pipelined: this one waits for the one before; read no further meanwhile.
            self.pause_reading("queue")

    def on_body(self, body: bytes) -> None:
        if self.receiving is not None:
            self.receiving.request_body(body)

    def on_message_complete(self) -> None:
        exchange, self.receiving = self.receiving, None
        if exchange is not None:
            exchange.request_done()

    # --- helpers for exchanges -----------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def pause_reading(self, reason: str) -> None:
        if not self._pauses and self.transport is not None:
            self.transport.pause_reading()
        self._pauses.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason in self._pauses:
            self._pauses.discard(reason)
            if not self._pauses and self.transport is not None and not self.closing:
                self.transport.resume_reading()

    def exchange_finished(self, exchange: Exchange, *, keep_alive: bool) -> None:
        exchanges = self.exchanges
        if exchanges and exchanges[0] is exchange:
            exchanges.popleft()
        if self._pauses:
            self.resume_reading("upstream")
            self.resume_reading("pending")
        if not keep_alive:
            self.close()
            return
        self.idle_since = _now()
        if exchanges:
            exchanges[0].start()
            if len(exchanges) <= 1:
                self.resume_reading("queue")
        elif self._pauses:
            self.resume_reading("queue")

    def start_tunnel(self, upstream: UpstreamConnection, early: bytes) -> None:
        self.tunnel = upstream
        upstream.tunnel = self
        self.exchanges.clear()
        self.receiving = None
        self._pauses.clear()
        if early:
            upstream.write(early)
        if self.transport is not None:
            self.transport.resume_reading()
        if self.write_paused:
            upstream.pause_reading()

    def _malformed(self, status: int, code: str, message: str) -> None:
        if self.exchanges:
            # Behind a request still being answered: an error now would come out of
            # order, so the connection just ends.
            self.abort()
            return
        self.write(
            error_response(
                status,
                code,
                message,
                accept=b"",
                request_id=self.engine.request_id(),
                close=True,
            )
        )
        self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    # --- time (the engine's sweep) -------------------------------------------------

    def sweep(self, now: float) -> str | None:
        """Enforce the timeouts of this connection; returns why it was closed, if it was.

        What is timed follows what the connection is doing:

        - a tunnel (after ``101``): nothing, it is the two ends' business;
        - an answer awaited or streaming (SSE): the upstream's read timeout only, a
          client reading a stream is not idle;
        - a request head arriving: ``header_timeout_s`` from its first byte, or from
          the opening for a connection's first request (a connection that says
          nothing is a slowloris too), however steadily it trickles in;
        - a request body arriving: ``body_idle_timeout_s`` without a byte, so an
          upload of any size lasts as long as it keeps sending;
        - nothing (between requests): the keep-alive timeout.

        Time during which the proxy itself holds the client back (reading paused by
        back-pressure or behind a pipelined request) does not count. Progress is
        read from what the request path records (the request being received, its
        body reads) rather than timed per request, so a limit is enforced up to a
        sweep interval late, never early.
        """
        if self.tunnel is not None or self.closing:
            return None
        exchanges = self.exchanges
        if exchanges:
            exchanges[0].check_timeout(now)
            if self.closing:
                return None
        engine = self.engine
        receiving = self.receiving
        if receiving is None:
            self.watched = None
            if exchanges:
                return None
            fresh = self.idle_since == self.opened
            if now - self.idle_since <= (
                engine.header_timeout_s if fresh else engine.client_keepalive_s
            ):
                return None
            self.close()
            return _HEAD if fresh else _IDLE
        head = not receiving.method  # set once llhttp has the whole head
        mark = -1 if head else receiving.body_reads
        if (
            receiving is not self.watched
            or mark != self.watched_mark
            or self._pauses
            or (mark == 0 and receiving.awaits_continue())
        ):
            # Something new, progress, or a silence that is not the client's: the
            # clock starts now (the first head of a connection: at its opening).
            fresh = head and not exchanges and self.idle_since == self.opened
            self.watched, self.watched_mark = receiving, mark
            self.watched_since = self.opened if fresh and not self._pauses else now
        limit = engine.header_timeout_s if head else engine.body_idle_timeout_s
        if now - self.watched_since <= limit:
            return None
        if not head:
            receiving.client_stalled()
            return _BODY
        if not exchanges:
            # Nothing is being answered, so a 408 cannot come out of order.
            self.write(
                error_response(
                    408,
                    "request_timeout",
                    "The request line and headers did not arrive in time.",
                    accept=receiving.accept,
                    request_id=engine.request_id(),
                    close=True,
                )
            )
        self.close()
        return _HEAD


class Exchange:
    """One request and its response, from the parsed head to the last byte back.

    It is also the protocol of the upstream response's parser (llhttp callbacks).
    """

    __slots__ = (
        "_chunked_out",
        "_eof_body",
        "_interim",
        "_out",
        "_switching",
        "_upstream_keep_alive",
        "accept",
        "body_reads",
        "chunked",
        "client",
        "connect_task",
        "continued",
        "done",
        "drop",
        "early_data",
        "expect_continue",
        "forwarded_for",
        "has_body",
        "host",
        "hosts",
        "http11",
        "keep_alive",
        "method",
        "parts",
        "path",
        "pending",
        "pending_size",
        "quiet_mark",
        "quiet_since",
        "r_chunked",
        "r_drop",
        "r_length",
        "r_parts",
        "r_reason",
        "r_request_id",
        "r_upgrade",
        "request_complete",
        "request_id",
        "response_complete",
        "response_parser",
        "response_started",
        "retried",
        "target",
        "upgrade",
        "upgrade_value",
        "upstream",
    )

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        # the request, as llhttp reports it; the method stays empty until the head
        # is complete (the sweep reads it so)
        self.method = b""
        self.path = b""
        self.parts: list[bytes] = []
        self.host: bytes | None = None
        self.hosts = 0
        self.request_id: bytes | None = None
        self.chunked = False
        self.has_body = False
        self.expect_continue = False
        self.accept = b""
        self.upgrade_value: bytes | None = None
        self.forwarded_for: bytes | None = None
        self.drop: set[bytes] | None = None
        self.http11 = True
        self.keep_alive = True
        self.upgrade = False
        # routing and the upstream side
        self.target: Target | None = None
        self.upstream: UpstreamConnection | None = None
        self.connect_task: asyncio.Future[None] | None = None
        self.pending: list[bytes] | None = []
        self.pending_size = 0
        self.early_data = b""
        self.body_reads = 0  # request body pieces received: the sweep's sign of progress
        self.continued = False  # a 100 Continue was passed on
        self.quiet_mark = -1
        self.quiet_since = 0.0
        self.request_complete = False
        self.response_started = False
        self.response_complete = False
        self.response_parser: httptools.HttpResponseParser | None = None
        self.done = False
        self.retried = False
        # the response, as llhttp reports it
        self.r_parts: list[bytes] = []
        self.r_reason = b""
        self.r_length = False
        self.r_chunked = False
        self.r_request_id = False
        self.r_upgrade: bytes | None = None
        self.r_drop: set[bytes] | None = None
        self._out: list[bytes] = []
        self._chunked_out = False
        self._eof_body = False
        self._upstream_keep_alive = False
        self._interim = False
        self._switching = False

    # --- the request head ----------------------------------------------------------

    def request_header(self, n: bytes, name: bytes, value: bytes) -> None:
        """A header the proxy looks at (``n``: the lowered name)."""
        if n == b"host":
            self.host = value
            self.hosts += 1
        elif n == b"content-length":
            self.has_body = self.has_body or value.strip() not in (b"0", b"")
        elif n == b"accept":
            self.accept = value
        elif n == b"expect":
            self.expect_continue = value.strip().lower() == b"100-continue"
        elif n == b"transfer-encoding":
            self.chunked = self.chunked or b"chunked" in value.lower()
            self.has_body = True
            return  # re-framed by the proxy
        elif n == b"x-forwarded-for":
            seen = self.forwarded_for
            self.forwarded_for = value if seen is None else seen + b", " + value
            return
        elif n == b"x-request-id":
            if 0 < len(value) <= _MAX_REQUEST_ID:
                self.request_id = value
            return
        elif n == b"upgrade":
            self.upgrade_value = value
            return
        elif n == b"connection":
            tokens = connection_tokens(value)
            if tokens:
                self.drop = (self.drop or set()) | tokens
            return
        else:
            return  # other hop-by-hop headers and forwarded headers set by the proxy
        self.parts += (name, _COLON, value, _CRLF)

    def request_head(self) -> bytes:
        """The head of the request as sent upstream (always HTTP/1.1)."""
        client = self.client
        parts = self.parts if self.drop is None else drop_named(self.parts, self.drop)
        prior = self.forwarded_for
        extra = b"Transfer-Encoding: chunked\r\n" if self.chunked else b""
        if self.upgrade and self.upgrade_value is not None:
            extra += b"Connection: Upgrade\r\nUpgrade: %s\r\n" % self.upgrade_value
        return (
            b"%s %s HTTP/1.1\r\n%sX-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\n"
            b"X-Forwarded-Host: %s\r\nX-Request-Id: %s\r\n%s\r\n"
        ) % (
            self.method,
            self.path,
            b"".join(parts),
            prior + b", " + client.peer if prior else client.peer,
            client.engine.scheme,
            self.host or b"",
            self.request_id,
            extra,
        )

    # --- routing -------------------------------------------------------------------

    def start(self) -> None:
        """Route the request (or answer it) once it is the connection's current one."""
        engine = self.client.engine
        if self.request_id is None:
            self.request_id = engine.request_id()
        if self.path[:1] != b"/" and not self._absolute_form():
            return
        raw_host = self.host
        if raw_host is None or self.hosts != 1:
            self.respond_local(400, "bad_host", "The request has no single Host header.")
            return
        target = engine.table.get_raw(raw_host)
        if target is None:
            host = raw_host.decode("latin-1")
            if is_valid_host(host):
                self.respond_local(
                    404, "route_not_found", f"No deployment is routed at {hostname_of(host)}."
                )
            else:
                self.respond_local(400, "bad_host", "The Host header is not a valid host name.")
            return
        if target.stopped:
            self.respond_local(
                503, "deployment_stopped", f"The deployment at {target.hostname} is stopped."
            )
            return
        if self.method == b"CONNECT":
            self.respond_local(405, "method_not_allowed", "CONNECT is not proxied here.")
            return
        self.target = target
        upstream = None if self.upgrade else engine.pool.take(target.key)
        if upstream is not None:
            self.attach(upstream)
        else:
            self.connect_task = asyncio.ensure_future(self._connect(target))

    def _absolute_form(self) -> bool:
        """``OPTIONS *`` or ``GET http://host/path``: route by the URL's host."""
        if self.path == b"*" and self.method == b"OPTIONS":
            return True
        if self.path.startswith((b"http://", b"https://")):
            try:
                url = httptools.parse_url(self.path)
            except httptools.HttpParserInvalidURLError:
                pass
            else:
                self.host = url.host + (b":%d" % url.port if url.port else b"")
                self.hosts = 1
                self.path = (url.path or b"/") + (b"?" + url.query if url.query else b"")
                return True
        self.respond_local(400, "bad_request_target", "The request target is not a path.")
        return False

    async def _connect(self, target: Target) -> None:
        pool = self.client.engine.pool
        try:
            for attempt in range(_FOLLOW_REPOINTS + 1):
                try:
                    upstream = await pool.connect(target.key)
                    break
                except TimeoutError:
                    self._fail(
                        504,
                        "upstream_timeout",
                        f"The deployment at {target.hostname} did not accept a connection in time.",
                    )
                    return
                except OSError as exc:
                    newer = self._repointed(target)
                    if newer is not None and attempt < _FOLLOW_REPOINTS:
                        # Re-pointed while this request was on its way (the old server
                        # may already be gone): follow the route.
                        target = self.target = newer
                        continue
                    self._fail(
                        502,
                        "upstream_unreachable",
                        f"The deployment at {target.hostname} is not accepting connections.",
                        error=exc.strerror or str(exc),
                    )
                    return
        finally:
            self.connect_task = None
        if self.done:
            pool.release(upstream, reusable=not self.upgrade)
            return
        self.attach(upstream)

    def _repointed(self, target: Target) -> Target | None:
        """The route's current target when it differs from ``target``."""
        current = self.client.engine.table.get(target.hostname)
        if current is None or current.stopped or current.key == target.key:
            return None
        return current

    def attach(self, upstream: UpstreamConnection) -> None:
        """Send the head and whatever body has arrived."""
        client = self.client
        self.upstream = upstream
        upstream.exchange = self
        self.response_parser = httptools.HttpResponseParser(self)
        head = self.request_head()
        pending = self.pending
        self.pending = None
        if pending:
            upstream.write(head + b"".join(pending))
            if self.pending_size > _PENDING_LIMIT:
                client.resume_reading("pending")
        else:
            upstream.write(head)
        self.quiet_mark = upstream.activity
        self.quiet_since = _now()
        if upstream.write_paused:
            client.pause_reading("upstream")
        if client.write_paused:
            upstream.pause_reading()

    # --- request body --------------------------------------------------------------

    def request_body(self, body: bytes) -> None:
        self.body_reads += 1
        if self.done:
            return
        data = b"%x\r\n%s\r\n" % (len(body), body) if self.chunked else body
        upstream = self.upstream
        if upstream is not None:
            upstream.write(data)
            upstream.activity += 1
        elif self.pending is not None:
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size > _PENDING_LIMIT:
                self.client.pause_reading("pending")

    def request_done(self) -> None:
        self.request_complete = True
        if self.done:
            return
        if self.chunked:
            if self.upstream is not None:
                self.upstream.write(_CHUNK_END)
            elif self.pending is not None:
                self.pending.append(_CHUNK_END)
        if self.response_complete:
            self._finish()

    # --- llhttp callbacks (response) -----------------------------------------------

    def on_message_begin(self) -> None:
        if self.r_parts:
            self.r_parts = []
        self.r_reason = b""

    def on_status(self, status: bytes) -> None:
        self.r_reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        n = name.lower()
        if n not in RESPONSE_SPECIAL:
            self.r_parts += (name, _COLON, value, _CRLF)
        elif n == b"content-length":
            self.r_length = True
            self.r_parts += (name, _COLON, value, _CRLF)
        elif n == b"x-request-id":
            self.r_request_id = True
            self.r_parts += (name, _COLON, value, _CRLF)
        elif n == b"transfer-encoding":
            self.r_chunked = self.r_chunked or b"chunked" in value.lower()
        elif n == b"upgrade":
            self.r_upgrade = value
        elif n == b"connection":
            tokens = connection_tokens(value)
            if tokens:
                self.r_drop = (self.r_drop or set()) | tokens

    def on_headers_complete(self) -> None:
        parser = self.response_parser
        assert parser is not None
        status = parser.get_status_code()
        parts = self.r_parts if self.r_drop is None else drop_named(self.r_parts, self.r_drop)
        if 100 <= status < 200 and status != 101:
            # Interim (100 Continue, 103 Early Hints): passed on to HTTP/1.1 clients.
            self._interim = True
            if status == 100:
                self.continued = True
            if self.http11:
                self._out.append(
                    b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, self.r_reason, b"".join(parts))
                )
            self.r_length = self.r_chunked = self.r_request_id = False
            self.r_drop = self.r_upgrade = None
            return
        self.response_started = True
        # Asked now: llhttp forgets the message's flags once it is complete.
        self._upstream_keep_alive = parser.should_keep_alive()
        extra = b"" if self.r_request_id else b"X-Request-Id: %s\r\n" % self.request_id
        if status == 101 and self.upgrade:
            self._switching = True
            if self.r_upgrade is not None:
                extra += b"Connection: Upgrade\r\nUpgrade: %s\r\n" % self.r_upgrade
        else:
            body_allowed = self.method != b"HEAD" and status not in (204, 304)
            if body_allowed and not self.r_length and not self.r_chunked:
                self._eof_body = True  # the upstream's body ends when it closes
            if body_allowed and (self.r_chunked or self._eof_body):
                if self.http11:
                    self._chunked_out = True
                    extra += b"Transfer-Encoding: chunked\r\n"
                else:
                    self.keep_alive = False  # an HTTP/1.0 client reads to the close
            if self.upgrade:
                self.keep_alive = False  # the client's parser stopped at the upgrade
            if not self.keep_alive:
                extra += b"Connection: close\r\n"
            elif not self.http11:
                extra += b"Connection: keep-alive\r\n"
            if not body_allowed:
                self.response_complete = True
        self._out.append(
            b"HTTP/1.1 %d %s\r\n%s%s\r\n" % (status, self.r_reason, b"".join(parts), extra)
        )

    def on_body(self, body: bytes) -> None:
        if self._chunked_out:
            self._out.append(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            self._out.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._chunked_out:
            self._out.append(_CHUNK_END)
        self.response_complete = True

    # --- response flow -------------------------------------------------------------

    def response_data(self, data: bytes) -> None:
        parser = self.response_parser
        if parser is None or self.done:
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            if self._switching:
                self._flush()
                self._tunnel(data[upgrade.args[0] :])
                return
            self._bad_response()
            return
        except httptools.HttpParserError:
            self._bad_response()
            return
        out = self._out
        if out:
            self.client.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if self.response_complete:
            self._finish()

    def _flush(self) -> None:
        out = self._out
        if out:
            self.client.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def _tunnel(self, rest: bytes) -> None:
        upstream = self.upstream
        assert upstream is not None
        self.done = True
        self.upstream = None
        upstream.exchange = None
        if rest:
            self.client.write(rest)
        self.client.start_tunnel(upstream, self.early_data)

    def _finish(self) -> None:
        if self.done:
            return
        if not self.request_complete:
            # The upstream answered before the whole body was sent (e.g. 413):
            # neither connection is in a known state any more.
            self.keep_alive = False
        self.done = True
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            self.client.engine.pool.release(
                upstream,
                self.request_complete
                and self._upstream_keep_alive
                and not self._eof_body
                and not self.upgrade,
            )
        self.response_parser = None
        self.client.exchange_finished(self, keep_alive=self.keep_alive)

    def upstream_lost(self) -> None:
        """The upstream connection ended before the exchange was done."""
        if self.done:
            return
        upstream, self.upstream = self.upstream, None
        if self.response_started:
            if self._eof_body and not self._switching:
                # A close-delimited body is complete when the upstream closes.
                if self._chunked_out:
                    self._out.append(_CHUNK_END)
                self._flush()
                self.response_complete = True
                self._finish()
                return
            # Cut the client's connection too: a truncated body must look truncated.
            self._log("proxy.response_cut", error="upstream closed mid-response")
            self.done = True
            self.client.abort()
            return
        if (
            upstream is not None
            and upstream.reused
            and not self.retried
            and self.method in _IDEMPOTENT
            and self.request_complete
            and not self.has_body
            and self.target is not None
        ):
            # A pooled connection the server closed as we reused it: try a fresh one.
            self.retried = True
            self.response_parser = None
            self.pending = []
            self.target = self._repointed(self.target) or self.target
            self.connect_task = asyncio.ensure_future(self._connect(self.target))
            return
        self._fail(
            502,
            "bad_gateway",
            f"The deployment at {self._hostname()} closed the connection without answering.",
        )

    def _bad_response(self) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.exchange = None
            upstream.close()
        if self.response_started:
            self._log("proxy.response_cut", error="invalid response from upstream")
            self.done = True
            self.client.abort()
            return
        self._fail(
            502, "bad_gateway", f"The deployment at {self._hostname()} sent an invalid response."
        )

    # --- flow control and time -----------------------------------------------------

    def client_paused(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def client_resumed(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def awaits_continue(self) -> bool:
        """Whether the client waits for ``100 Continue`` before sending its body (its
        silence is then the upstream's, timed by the read timeout)."""
        return self.expect_continue and not self.continued and not self.done

    def client_stalled(self) -> None:
        """The client stopped sending its body for ``body_idle_timeout_s``: answer 408
        when nothing has been answered yet, else end the connection (an answer that
        has begun cannot be replaced, so the client's connection is cut)."""
        self.keep_alive = False
        client = self.client
        if self.done:
            client.close()  # already answered (a 404 whose body was being read away)
            return
        if self.response_started:
            self.abort()
            client.abort()
            return
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.exchange = None
            upstream.close()
        self.respond_local(408, "request_timeout", "The request body stopped arriving.")

    def check_timeout(self, now: float) -> None:
        """Called by the engine's sweep: end the exchange if its upstream has been
        silent for the read timeout."""
        upstream = self.upstream
        if self.done or upstream is None:
            return
        if upstream.activity != self.quiet_mark or upstream.reading_paused:
            # Progress since the last look, or the client is slow (its silence is ours).
            self.quiet_mark = upstream.activity
            self.quiet_since = now
            return
        if now - self.quiet_since < self.client.engine.read_timeout_s:
            return
        self.upstream = None
        upstream.exchange = None
        upstream.close()
        if self.response_started:
            self._log("proxy.response_cut", error="upstream silent past the read timeout")
            self.done = True
            self.client.abort()
            return
        self._fail(
            504, "upstream_timeout", f"The deployment at {self._hostname()} did not answer in time."
        )

    # --- endings -------------------------------------------------------------------

    def _hostname(self) -> str:
        return self.target.hostname if self.target is not None else "this host"

    def _log(self, event: str, **extra: object) -> None:
        _log.warning(
            event,
            host=self._hostname(),
            route_id=self.target.route_id if self.target else None,
            request_id=(self.request_id or b"").decode("latin-1"),
            **extra,
        )

    def _fail(self, status: int, code: str, message: str, **extra: object) -> None:
        """An upstream failure before any of its answer reached the client."""
        if self.done:
            return
        self._log(f"proxy.{code}", status=status, **extra)
        if self.upstream is not None:
            self.upstream.exchange = None
            self.upstream.close()
            self.upstream = None
        self.respond_local(status, code, message)

    def respond_local(self, status: int, code: str, message: str) -> None:
        """Answer from the proxy itself. The connection stays open when the client
        wants it: a body still coming is read and dropped, unless the client waits
        for ``100 Continue`` before sending it."""
        if self.upgrade or (self.has_body and self.expect_continue and not self.request_complete):
            self.keep_alive = False
        self.client.write(
            error_response(
                status,
                code,
                message,
                accept=self.accept,
                request_id=self.request_id or self.client.engine.request_id(),
                close=not self.keep_alive,
                head_only=self.method == b"HEAD",
            )
        )
        self.done = True
        self.response_started = True
        self.response_complete = True
        self.pending = None
        self.client.exchange_finished(self, keep_alive=self.keep_alive)

    def abort(self) -> None:
        """The client went away: drop the upstream side too."""
        self.done = True
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        if self.upstream is not None:
            self.upstream.exchange = None
            self.upstream.close()
            self.upstream = None
