"""Outbound webhooks against a real aiohttp receiver on 127.0.0.1: signed deliveries
the receiver verifies, retries with one delivery id, no redirects, bounded reads and
timeouts; targets that point into the control plane's own network refused; the
connection pinned to the address that was checked; Slack bodies that cannot mention
or link."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mastra_admin.core.errors import InvalidInput
from mastra_admin.core.outbound import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_target,
    deliver,
    sign,
    slack_payload,
    verify,
)

SECRET = "whsec_0123456789abcdef"
PAYLOAD = {"event": "build.failed", "project": {"slug": "search"}, "attempt": 2, "note": "Grüße"}
FAST = {"base_delay_s": 0.01, "max_delay_s": 0.05, "allow_private": True}

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    path: str
    headers: Mapping[str, str]
    body: bytes
    verified: bool


@dataclass
class Receiver:
    """A webhook receiver that answers with ``answers`` in turn (then 200) and checks
    every signature the way a receiver should, with ``verify``."""

    port: int = 0
    answers: list[Answer] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/B000/xyz"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        verified = verify(
            SECRET,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
        )
        self.seen.append(Seen(request.path, dict(request.headers), body, verified))
        if self.answers:
            return await self.answers.pop(0)(request)
        return web.Response(text="ok")

    async def hang(self, request: web.Request) -> web.StreamResponse:
        await self.release.wait()
        return web.Response(text="too late")


def status(code: int, *, text: str = "", headers: Mapping[str, str] | None = None) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text=text, headers=headers)

    return answer


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hook.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    hook.port = int(server.sockets[0].getsockname()[1])
    yield hook
    hook.release.set()
    await runner.cleanup()


@dataclass
class FakeDns:
    """The event loop's ``getaddrinfo`` for names under ``.test-dns.example``: each
    name answers with its scripted address lists in turn (the last one repeats), like
    a rebinding DNS server. Other names go to the real resolver."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            if not name.endswith(".test-dns.example"):
                return await real(host, port, *args, **kwargs)
            self.asked.append(name)
            script = self.answers[name]
            addresses = script.pop(0) if len(script) > 1 else script[0]
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (a, int(port or 0)),
                )
                for a in addresses
            ]

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """Installed on the test's own event loop (an async fixture runs on it)."""
    dns = FakeDns()
    dns.install(monkeypatch)
    return dns


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- delivery --------------------------------------------------------------------------


async def test_a_signed_delivery_is_verified_by_the_receiver(receiver: Receiver) -> None:
    result = await deliver(receiver.url, PAYLOAD, secret=SECRET, event="build.failed", **FAST)

    assert result.ok
    [attempt] = result.attempts
    assert attempt.status_code == 200
    assert attempt.error is None
    assert attempt.duration_ms > 0
    [seen] = receiver.seen
    assert seen.verified
    assert seen.path == "/hooks/T000/B000/xyz"
    assert json.loads(seen.body) == PAYLOAD
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["User-Agent"].startswith("MastraAdmin-Webhooks/")
    assert seen.headers[EVENT_HEADER] == "build.failed"
    assert seen.headers[DELIVERY_HEADER] == result.delivery_id
    assert seen.headers[SIGNATURE_HEADER].startswith("sha256=")
    assert abs(int(seen.headers[TIMESTAMP_HEADER]) - time.time()) < 5


async def test_two_500s_then_200_is_three_attempts_of_one_delivery(receiver: Receiver) -> None:
    receiver.answers = [status(500, text="boom"), status(503)]

    result = await deliver(receiver.url, PAYLOAD, secret=SECRET, event="build.failed", **FAST)

    assert result.ok
    assert [a.status_code for a in result.attempts] == [500, 503, 200]
    assert result.attempts[0].error == "HTTP 500: boom"
    assert result.attempts[0].at <= result.attempts[1].at <= result.attempts[2].at
    assert {s.headers[DELIVERY_HEADER] for s in receiver.seen} == {result.delivery_id}
    assert all(s.verified for s in receiver.seen)


async def test_a_400_is_final(receiver: Receiver) -> None:
    receiver.answers = [status(400, text='{"error":"unknown channel"}')]

    result = await deliver(receiver.url, PAYLOAD, secret=SECRET, event="build.failed", **FAST)

    assert not result.ok
    [attempt] = result.attempts
    assert attempt.status_code == 400
    assert attempt.error == 'HTTP 400: {"error":"unknown channel"}'
    assert len(receiver.seen) == 1


async def test_429_waits_as_long_as_retry_after_says(receiver: Receiver) -> None:
    # A backoff of 30 s would blow the test's time: only Retry-After makes it quick.
    receiver.answers = [
        status(429, headers={"Retry-After": "0"}),
        status(429, headers={"Retry-After": "3600"}),  # capped at max_delay_s
    ]
    started = time.monotonic()

    result = await deliver(
        receiver.url,
        PAYLOAD,
        secret=SECRET,
        event="build.failed",
        base_delay_s=30,
        max_delay_s=0.2,
        allow_private=True,
    )

    assert result.ok
    assert [a.status_code for a in result.attempts] == [429, 429, 200]
    assert time.monotonic() - started < 5


async def test_a_receiver_that_hangs_times_out_on_each_attempt(receiver: Receiver) -> None:
    receiver.answers = [receiver.hang, receiver.hang]

    result = await deliver(
        receiver.url,
        PAYLOAD,
        secret=SECRET,
        event="build.failed",
        attempts=2,
        timeout_s=0.3,
        **FAST,
    )

    assert not result.ok
    assert [a.status_code for a in result.attempts] == [None, None]
    for attempt in result.attempts:
        assert attempt.error == "timed out after 0.3 s"
        assert 250 < attempt.duration_ms < 2000


async def test_an_endless_answer_is_read_only_so_far(receiver: Receiver) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        while not receiver.release.is_set():
            await response.write(b"x" * 65536)
            await asyncio.sleep(0.001)
        return response

    receiver.answers = [endless]

    result = await deliver(
        receiver.url, PAYLOAD, secret=SECRET, event="build.failed", timeout_s=3, **FAST
    )

    assert result.ok
    assert result.attempts[0].duration_ms < 2000


async def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.answers = [status(302, headers={"Location": "/elsewhere"})]

    result = await deliver(receiver.url, PAYLOAD, secret=SECRET, event="build.failed", **FAST)

    assert not result.ok
    [attempt] = result.attempts
    assert attempt.status_code == 302
    assert attempt.error is not None
    assert attempt.error.startswith("redirect not followed")
    assert [s.path for s in receiver.seen] == ["/hooks/T000/B000/xyz"]


async def test_a_receiver_that_is_down_is_a_failed_result_not_an_error() -> None:
    result = await deliver(
        f"http://127.0.0.1:{_free_port()}/", PAYLOAD, secret=None, event="e", attempts=3, **FAST
    )

    assert not result.ok
    assert len(result.attempts) == 3
    assert all(a.status_code is None and a.error for a in result.attempts)


async def test_a_garbled_answer_is_retried_and_its_error_hides_the_urls_path() -> None:
    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"HTTP/1.1 2OO OK\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garble, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/services/T1/B2/secret-token"
        result = await deliver(url, PAYLOAD, secret=None, event="e", attempts=2, **FAST)
    finally:
        server.close()
        await server.wait_closed()

    assert not result.ok
    assert len(result.attempts) == 2
    for attempt in result.attempts:
        assert attempt.error is not None
        assert attempt.error.startswith("invalid response")
        assert "secret-token" not in attempt.error


async def test_a_payload_that_is_not_json_is_refused(receiver: Receiver) -> None:
    with pytest.raises(InvalidInput):
        await deliver(receiver.url, {"at": object()}, secret=None, event="e", **FAST)
    assert receiver.seen == []


# --- the target --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:1/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://169.254.169.254/latest", "link_local"),
        ("http://[::1]/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "link_local"),
        ("http://[fe80::1]/", "link_local"),
        ("http://[fd00::1]/", "private"),
        ("http://100.64.0.1/", "not_global"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://2130706433/", "loopback"),
        ("http://user:pw@example.com/", "userinfo"),
        ("http://@example.com/", "userinfo"),
        ("ftp://example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http:///path", "host"),
        ("http://example.com:0/", "port"),
        ("http://example.com:99999/", "syntax"),
        ("http://example.com/a\r\nX-Injected: 1", "characters"),
    ],
)
async def test_targets_in_the_control_planes_network_are_refused(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await check_target(url, allow_private=False)
    assert caught.value.details == {"field": "url", "reason": reason}
    assert "pw" not in caught.value.message

    with pytest.raises(InvalidInput):
        await deliver(url, PAYLOAD, secret=SECRET, event="e", allow_private=False)


async def test_a_name_is_refused_if_any_of_its_addresses_is_private(fake_dns: FakeDns) -> None:
    fake_dns.answers["mixed.test-dns.example"] = [["93.184.216.34", "10.1.2.3"]]
    fake_dns.answers["public.test-dns.example"] = [["93.184.216.34", "2606:2800:220:1::1"]]

    with pytest.raises(InvalidInput, match=r"10\.1\.2\.3 \(private\)"):
        await check_target("https://mixed.test-dns.example/hook", allow_private=False)
    target = await check_target("https://PUBLIC.test-dns.example:8443/h", allow_private=False)

    assert target.host == "public.test-dns.example"
    assert target.port == 8443
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    assert target.origin == "https://public.test-dns.example:8443"


async def test_the_delivery_goes_to_the_address_that_was_checked(
    receiver: Receiver, fake_dns: FakeDns
) -> None:
    """A rebinding DNS answers 127.0.0.1 once, then an address nothing listens on:
    the delivery still reaches the receiver, and DNS was asked once."""
    name = "hooks.test-dns.example"
    fake_dns.answers[name] = [["127.0.0.1"], ["127.0.0.2"]]

    result = await deliver(
        f"http://{name}:{receiver.port}/x", PAYLOAD, secret=SECRET, event="e", **FAST
    )

    assert result.ok
    assert fake_dns.asked == [name]
    assert receiver.seen[0].headers["Host"] == f"{name}:{receiver.port}"
    assert receiver.seen[0].verified


async def test_a_callers_session_is_pinned_too(receiver: Receiver, fake_dns: FakeDns) -> None:
    """With a caller's session the request goes to each checked address in turn
    (127.0.0.2 refuses), keeping the name as the Host header."""
    name = "shared.test-dns.example"
    fake_dns.answers[name] = [["127.0.0.2", "127.0.0.1"], ["127.0.0.3"]]

    async with aiohttp.ClientSession() as session:
        result = await deliver(
            f"http://{name}:{receiver.port}/x",
            PAYLOAD,
            secret=SECRET,
            event="e",
            session=session,
            **FAST,
        )
        assert not session.closed

    assert result.ok
    assert fake_dns.asked == [name]
    assert receiver.seen[0].headers["Host"] == f"{name}:{receiver.port}"


async def test_a_name_that_does_not_resolve_yet_is_retried(
    receiver: Receiver, fake_dns: FakeDns
) -> None:
    name = "late.test-dns.example"
    fake_dns.answers[name] = [[], ["127.0.0.1"]]

    result = await deliver(
        f"http://{name}:{receiver.port}/", PAYLOAD, secret=None, event="e", **FAST
    )

    assert result.ok
    assert result.attempts[0].error is not None
    assert "resolves to no address" in result.attempts[0].error
    assert result.attempts[1].status_code == 200


# --- signatures --------------------------------------------------------------------------


def test_sign_is_hmac_sha256_over_timestamp_and_body() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()

    assert sign(SECRET, 1_700_000_000, body) == "sha256=" + expected


def test_verify_refuses_tampering_wrong_secrets_and_stale_timestamps() -> None:
    body = json.dumps(PAYLOAD).encode()
    now = 1_700_000_000
    signature = sign(SECRET, now, body)

    assert verify(SECRET, str(now), signature, body, now=now + 299)
    assert not verify(SECRET, str(now), signature, body + b" ", now=now)
    assert not verify(SECRET, str(now), signature, body.replace(b"2", b"3"), now=now)
    assert not verify("another-secret", str(now), signature, body, now=now)
    assert not verify(SECRET, str(now), signature, body, now=now + 301)
    assert not verify(SECRET, str(now), signature, body, now=now - 301)
    assert not verify(SECRET, str(now + 1), signature, body, now=now)
    assert not verify(SECRET, str(now), signature.upper(), body, now=now)
    assert not verify(SECRET, str(now), "sha256=ä" + signature[8:], body, now=now)
    assert not verify(SECRET, f" {now}", signature, body, now=now)
    assert not verify(SECRET, None, signature, body, now=now)
    assert not verify(SECRET, str(now), None, body, now=now)
    old = sign(SECRET, now - 3600, body)
    assert not verify(SECRET, str(now - 3600), old, body, now=now)


# --- Slack -------------------------------------------------------------------------------


def test_slack_payload_escapes_what_could_mention_or_link() -> None:
    payload = slack_payload(
        "Build failed: <!channel> & co",
        "project <https://evil.example|click here> by <@U123> failed",
        url="https://admin.example.com/projects/p1?tab=builds&x=1",
    )

    section = payload["blocks"][0]["text"]["text"]
    for text in (payload["text"], section):
        assert "<" not in text
        assert ">" not in text
        assert "&lt;!channel&gt; &amp; co" in text
        assert "&lt;https://evil.example|click here&gt;" in text
        assert "&lt;@U123&gt;" in text
    assert section.startswith("*Build failed: ")
    [button] = payload["blocks"][1]["elements"]
    assert button["url"] == "https://admin.example.com/projects/p1?tab=builds&x=1"
    assert [b["type"] for b in slack_payload("t", "x")["blocks"]] == ["section"]


def test_slack_payload_fits_slacks_limits_without_splitting_an_escape() -> None:
    payload = slack_payload("t", "&" * 5000)

    section = payload["blocks"][0]["text"]["text"]
    assert len(section) <= 3000
    assert section.endswith("&amp;…")


def test_slack_payload_refuses_a_link_that_is_not_http() -> None:
    with pytest.raises(InvalidInput):
        slack_payload("t", "x", url="javascript:alert(1)")


async def test_a_slack_delivery_is_unsigned(receiver: Receiver) -> None:
    body = slack_payload("Deploy <b>", "ok")

    result = await deliver(receiver.url, body, secret=None, event="deployment.ready", **FAST)

    assert result.ok
    [seen] = receiver.seen
    assert SIGNATURE_HEADER not in seen.headers
    assert not seen.verified
    assert json.loads(seen.body) == body
