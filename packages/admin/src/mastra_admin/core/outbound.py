"""Outbound webhooks: one JSON notification delivered to a URL someone typed in.

The URL is hostile input. ``check_target`` refuses what would let a team member
make the control plane call into its own network (loopback, private ranges, the
cloud metadata address at 169.254.169.254, ...) and resolves the host once; the
request then goes to exactly the addresses that were checked, so a DNS server that
answers differently the second time (DNS rebinding) cannot redirect it. Deliveries
are signed (``sign``; ``verify`` is what a receiver does), retried with backoff on
failures that may pass, and never follow redirects. ``slack_payload`` shapes a
message for a Slack-compatible incoming webhook.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import random
import re
import socket
import time
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from pydantic import BaseModel, ConfigDict, Field
from yarl import URL

from mastra_admin.core.errors import InvalidInput, Unavailable
from mastra_admin.core.models import utcnow
from mastra_admin.core.version import __version__

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "RESPONSE_READ_LIMIT",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "USER_AGENT",
    "CheckedTarget",
    "DeliveryAttempt",
    "DeliveryResult",
    "check_target",
    "deliver",
    "sign",
    "slack_payload",
    "verify",
]

_log = structlog.get_logger("mastra_admin.core.outbound")

SIGNATURE_HEADER: Final = "X-MastraAdmin-Signature"
TIMESTAMP_HEADER: Final = "X-MastraAdmin-Timestamp"
EVENT_HEADER: Final = "X-MastraAdmin-Event"
DELIVERY_HEADER: Final = "X-MastraAdmin-Delivery"
USER_AGENT: Final = f"MastraAdmin-Webhooks/{__version__}"
RESPONSE_READ_LIMIT: Final = 4096
"""Bytes of a response body read at most: a receiver cannot make us download more."""

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_SLACK_SECTION_LIMIT: Final = 3000
_SLACK_TEXT_LIMIT: Final = 4000
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


# --- the target ----------------------------------------------------------------------


class CheckedTarget(BaseModel):
    """A URL that passed ``check_target``, with the addresses to connect to.

    ``host`` is the URL's host as sent in the ``Host`` header and as the TLS server
    name (IDNA-encoded); ``addresses`` are what it resolved to when it was checked.
    """

    model_config = ConfigDict(frozen=True)

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]

    @property
    def origin(self) -> str:
        """``scheme://host:port``: how logs and messages name the target. Never the
        whole URL, whose path is often the secret (a Slack webhook's is)."""
        return f"{self.scheme}://{_bracketed(self.host)}:{self.port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _refuse(message: str, reason: str) -> InvalidInput:
    return InvalidInput(message, details={"field": "url", "reason": reason})


def _refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the control plane must not connect to ``address`` (a short code such as
    ``loopback`` or ``link_local``), or None when it may.

    Addresses that carry an IPv4 address inside an IPv6 one (IPv4-mapped, 6to4,
    the NAT64 well-known prefix) are judged by the IPv4 address they lead to.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _refusal(address.ipv4_mapped)
        if address.sixtofour is not None:
            return _refusal(address.sixtofour)
        if address in _NAT64:
            return _refusal(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    for reason, test in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link_local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if test:
            return reason
    if not address.is_global:  # shared address space (100.64/10) and the like
        return "not_global"
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def check_target(url: str, *, allow_private: bool) -> CheckedTarget:
    """Check that ``url`` may receive notifications, and resolve its host.

    Refused (``InvalidInput`` with ``details["field"] == "url"``): a scheme other than
    http and https, a user name or password in the URL, no host, a port outside
    1-65535, whitespace or control characters anywhere, and, unless
    ``allow_private`` (tests, installations whose receivers are on a private
    network), a host that is or resolves to ANY loopback, private, link-local
    (169.254.169.254 included), multicast, reserved, unspecified or otherwise
    non-global address, in IPv4 or any IPv6 form of one. A host that cannot be
    resolved right now is ``Unavailable``: it may resolve later.
    """
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        raise _refuse("the URL must not contain whitespace or control characters", "characters")
    try:
        parsed = URL(url)
        authority = urlsplit(url).netloc
    except ValueError as exc:
        raise _refuse(f"not a valid URL: {exc}", "syntax") from None
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _refuse("the URL must start with http:// or https://", "scheme")
    if "@" in authority or parsed.raw_user is not None or parsed.raw_password is not None:
        # Not repeated in the message: it may hold a password.
        raise _refuse("the URL must not contain a user name or password", "userinfo")
    host = parsed.raw_host
    if not host or not parsed.is_absolute():
        raise _refuse("the URL has no host", "host")
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise _refuse("the URL's port must be between 1 and 65535", "port")
    host = host.lower()
    shown = f"{scheme}://{_bracketed(host)}:{port}"
    if not allow_private and (host == "localhost" or host.rstrip(".").endswith(".localhost")):
        raise _refuse(f"{shown} is not allowed: localhost is this machine", "loopback")

    literal = _literal(parsed.host or host)
    if literal is not None:
        addresses: tuple[str, ...] = (str(literal),)
    else:
        addresses = await _resolve(host, port, shown)
    if not allow_private:
        for address in addresses:
            reason = _refusal(ipaddress.ip_address(address))
            if reason is not None:
                raise _refuse(
                    f"{shown} is not allowed: {host} is or resolves to {address} "
                    f"({reason.replace('_', ' ')})",
                    reason,
                )
    return CheckedTarget(url=url, scheme=scheme, host=host, port=port, addresses=addresses)


async def _resolve(host: str, port: int, shown: str) -> tuple[str, ...]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:
        raise Unavailable(
            f"cannot resolve {shown}: {exc}", details={"field": "url", "host": host}
        ) from None
    found = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not found:
        raise Unavailable(f"{shown} resolves to no address", details={"field": "url"})
    return found


class _PinnedResolver(AbstractResolver):
    """Answers for the checked host only, with the checked addresses: the connection
    goes where ``check_target`` looked, whatever DNS says by now."""

    def __init__(self, target: CheckedTarget) -> None:
        self._target = target

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        if host.lower() != self._target.host:
            raise OSError(f"{host} was not checked; only {self._target.host} may be reached")
        results: list[ResolveResult] = []
        for address in self._target.addresses:
            ip = ipaddress.ip_address(address)
            ip_family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            if family not in (socket.AF_UNSPEC, ip_family):
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=ip_family,
                    proto=socket.IPPROTO_TCP,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            raise OSError(f"no checked address of {host} in the wanted family")
        return results

    async def close(self) -> None:
        return None


# --- signatures ----------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-MastraAdmin-Signature`` of a delivery: ``sha256=`` and the hex
    HMAC-SHA256, keyed with the channel's secret, of ``"{timestamp}."`` followed by
    the exact body bytes. The timestamp is inside the MAC so that an old delivery
    cannot be replayed with a new ``X-MastraAdmin-Timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does with a delivery: True only if the signature is right for
    this body and timestamp and the timestamp is within ``tolerance_s`` of ``now``
    (default: the clock), either way.

    Read the body as raw bytes and verify before parsing the JSON. The comparison is
    constant-time. Stale timestamps are refused so that a captured delivery cannot
    be replayed later; within the window, drop repeats by ``X-MastraAdmin-Delivery``
    (the same on every retry of one delivery).
    """
    if not timestamp_header or not signature_header:
        return False
    if not _TIMESTAMP.match(timestamp_header):
        return False
    timestamp = int(timestamp_header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, signature_header.encode("utf-8", "replace"))


# --- delivery ------------------------------------------------------------------------


class DeliveryAttempt(BaseModel):
    """One try: when it started, the status the receiver answered (None when there
    was no answer) or what went wrong, and how long it took."""

    at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: float


class DeliveryResult(BaseModel):
    """Every attempt of one delivery, oldest first. ``ok`` when the last answered 2xx."""

    delivery_id: str
    ok: bool
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class _Outcome(BaseModel):
    attempt: DeliveryAttempt
    ok: bool = False
    retry: bool = False
    retry_after_s: float | None = None


def _body(payload: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"the notification is not JSON: {exc}", details={"field": "payload"}
        ) from None


def _retry_after(value: str | None, ceiling: float) -> float | None:
    """A numeric ``Retry-After`` (seconds), capped; HTTP dates are ignored."""
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), ceiling)


def _backoff(failed_attempts: int, base_s: float, max_s: float) -> float:
    """Exponential backoff with jitter (half of it random), so that many deliveries
    failing together do not all come back at the same moment."""
    delay = min(max_s, base_s * 2.0 ** (failed_attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < RESPONSE_READ_LIMIT:
        chunk = await response.content.read(RESPONSE_READ_LIMIT - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _excerpt(body: bytes) -> str:
    return _printable(body[:200].decode("utf-8", "replace"))


def _printable(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


class _Request(BaseModel):
    url: str
    host_header: str | None = None
    server_hostname: str | None = None


def _requests(target: CheckedTarget, *, pinned_by_url: bool) -> list[_Request]:
    """Where to send the request, in order of preference. With our own session: the
    URL itself, as the session's resolver is pinned. With a caller's session (whose
    resolver is not ours): the URL with each checked address in place of the host,
    the host kept as the ``Host`` header and the TLS server name."""
    if not pinned_by_url:
        return [_Request(url=target.url)]
    url = URL(target.url)
    default = _DEFAULT_PORTS[target.scheme]
    host_header = _bracketed(target.host) + ("" if target.port == default else f":{target.port}")
    tls_name = target.host if target.scheme == "https" else None
    return [
        _Request(
            url=str(url.with_host(address).with_port(target.port)),
            host_header=host_header,
            server_hostname=tls_name,
        )
        for address in target.addresses
    ]


async def _attempt(
    session: aiohttp.ClientSession,
    target: CheckedTarget,
    *,
    pinned_by_url: bool,
    headers: Mapping[str, str],
    body: bytes,
    timeout_s: float,
    max_delay_s: float,
) -> _Outcome:
    at = utcnow()
    started = time.perf_counter()

    def done(**fields: Any) -> DeliveryAttempt:
        return DeliveryAttempt(at=at, duration_ms=(time.perf_counter() - started) * 1000, **fields)

    requests = _requests(target, pinned_by_url=pinned_by_url)
    try:
        async with asyncio.timeout(timeout_s):
            for index, request in enumerate(requests):
                sent = dict(headers)
                if request.host_header is not None:
                    sent["Host"] = request.host_header
                try:
                    async with session.post(
                        request.url,
                        data=body,
                        headers=sent,
                        server_hostname=request.server_hostname,
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=timeout_s),
                    ) as response:
                        status = response.status
                        retry_after = response.headers.get("Retry-After")
                        read = await _read_limited(response)
                    break
                except aiohttp.ClientConnectorError:
                    if index == len(requests) - 1:
                        raise
    except TimeoutError:
        return _Outcome(attempt=done(error=f"timed out after {timeout_s:g} s"), retry=True)
    except (aiohttp.ClientError, OSError) as exc:
        return _Outcome(attempt=done(error=_client_error(exc, target)), retry=True)

    if 200 <= status < 300:
        return _Outcome(attempt=done(status_code=status), ok=True)
    answer = f"HTTP {status}" + (f": {_excerpt(read)}" if read.strip() else "")
    if 300 <= status < 400:
        return _Outcome(attempt=done(status_code=status, error=f"redirect not followed ({answer})"))
    if status == 429 or status >= 500:
        return _Outcome(
            attempt=done(status_code=status, error=answer),
            retry=True,
            retry_after_s=_retry_after(retry_after, max_delay_s),
        )
    return _Outcome(attempt=done(status_code=status, error=answer))


def _client_error(exc: BaseException, target: CheckedTarget) -> str:
    """The error of a try, for the result and the log: without the URL's path and
    query (often the webhook's secret, as Slack's are), which some aiohttp errors
    repeat, and without control characters a hostile receiver may have sent."""
    if isinstance(exc, aiohttp.ClientResponseError):
        text = f"invalid response: {exc.message}"
    else:
        text = str(exc) or type(exc).__name__
    secret_part = URL(target.url).raw_path_qs
    for hidden in (target.url, secret_part if len(secret_part) > 1 else None):
        if hidden:
            text = text.replace(hidden, "/…" if hidden is secret_part else target.origin)
    return _printable(text)[:300]


async def deliver(
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: str | None,
    event: str,
    attempts: int = 5,
    base_delay_s: float = 1.0,
    max_delay_s: float = 60,
    timeout_s: float = 10,
    allow_private: bool = False,
    session: aiohttp.ClientSession | None = None,
) -> DeliveryResult:
    """POST ``payload`` as JSON to ``url``, retrying until it is taken or
    ``attempts`` tries have been made, and say what happened.

    Each try has ``timeout_s`` for everything (connect, send, answer). Connection
    errors, timeouts, 5xx and 429 are tried again after an exponential backoff with
    jitter (``base_delay_s``, doubling, at most ``max_delay_s``), or after a numeric
    ``Retry-After`` (at most ``max_delay_s``); another 4xx is final, and so is a
    redirect, which is never followed (it could point anywhere). At most
    ``RESPONSE_READ_LIMIT`` bytes of an answer are read.

    With ``secret`` the delivery is signed (``sign``); Slack-compatible webhooks take
    ``secret=None``. ``X-MastraAdmin-Delivery`` is one id for every try, so that a
    receiver can drop repeats; the timestamp and signature are fresh on each.

    Without ``session`` a private one is made whose resolver answers only with the
    checked addresses; a caller's ``session`` is sent the checked address directly
    (the host stays the ``Host`` header and TLS server name). Its cookie jar, if
    any, sees the receivers' cookies.

    A failed delivery does not raise: it is in the result. ``InvalidInput`` is raised
    for a refused target (see ``check_target``) or a payload that is not JSON.
    """
    delivery_id = str(uuid.uuid4())
    body = _body(payload)
    result = DeliveryResult(delivery_id=delivery_id, ok=False)
    log = _log.bind(delivery_id=delivery_id, event=event)
    target: CheckedTarget | None = None
    client = session
    own: aiohttp.ClientSession | None = None
    try:
        for number in range(1, max(1, attempts) + 1):
            if target is None:
                try:
                    target = await check_target(url, allow_private=allow_private)
                except Unavailable as exc:  # DNS may answer on a later try
                    outcome = _Outcome(
                        attempt=DeliveryAttempt(at=utcnow(), error=exc.message, duration_ms=0),
                        retry=True,
                    )
            if target is not None:
                if client is None:
                    own = client = _pinned_session(target)
                outcome = await _attempt(
                    client,
                    target,
                    pinned_by_url=session is not None,
                    headers=_headers(secret, event, delivery_id, body),
                    body=body,
                    timeout_s=timeout_s,
                    max_delay_s=max_delay_s,
                )
            result.attempts.append(outcome.attempt)
            log.info(
                "outbound.attempt",
                target=target.origin if target is not None else None,
                attempt=number,
                status_code=outcome.attempt.status_code,
                error=outcome.attempt.error,
                duration_ms=round(outcome.attempt.duration_ms, 1),
            )
            if outcome.ok:
                result.ok = True
                break
            if not outcome.retry or number >= attempts:
                break
            delay = outcome.retry_after_s
            await asyncio.sleep(
                delay if delay is not None else _backoff(number, base_delay_s, max_delay_s)
            )
    finally:
        if own is not None:
            await own.close()
    if result.ok:
        log.info("outbound.delivered", attempts=len(result.attempts))
    else:
        log.warning("outbound.failed", attempts=len(result.attempts))
    return result


def _headers(secret: str | None, event: str, delivery_id: str, body: bytes) -> dict[str, str]:
    """The headers of one try: a fresh timestamp (and signature over it) each time,
    so that a retry minutes later is not refused as stale."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return headers


def _pinned_session(target: CheckedTarget) -> aiohttp.ClientSession:
    """A session for one delivery: the pinned resolver, no DNS cache, no cookies, no
    proxy from the environment (a proxy would resolve the host itself)."""
    connector = aiohttp.TCPConnector(resolver=_PinnedResolver(target), use_dns_cache=False, limit=4)
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


# --- Slack ---------------------------------------------------------------------------


def _slack_escape(text: str, limit: int) -> str:
    """``text`` with Slack's control characters escaped (``&``, ``<``, ``>``: what
    links, mentions such as ``<!channel>`` and user references are made of), cut to
    ``limit`` escaped characters without splitting an escape."""
    out: list[str] = []
    size = 0
    for char in text:
        piece = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}.get(char, char)
        if size + len(piece) > limit - 1:
            out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def slack_payload(title: str, text: str, *, url: str | None = None) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (the notification's fallback) and
    ``blocks`` (a section with the bold title and the text, and a button to ``url``).

    Title and text are user-supplied (a project or team name) and escaped, so they
    cannot become links or mentions. ``url`` goes into the button's ``url`` field,
    which Slack does not parse as markup; it must be http(s) without spaces.
    """
    safe_title = _slack_escape(title, 150)
    safe_text = _slack_escape(text, _SLACK_SECTION_LIMIT - len(safe_title) - 3)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{safe_title}*\n{safe_text}"}}
    ]
    if url is not None:
        parsed = urlsplit(url)
        if (
            parsed.scheme not in _DEFAULT_PORTS
            or not parsed.netloc
            or len(url) > 3000
            or any(c.isspace() or unicodedata.category(c) == "Cc" for c in url)
        ):
            raise InvalidInput("the link must be an http(s) URL", details={"field": "url"})
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url}
                ],
            }
        )
    fallback = f"{safe_title}: {_slack_escape(text, _SLACK_TEXT_LIMIT)}"
    return {"text": fallback, "blocks": blocks}
