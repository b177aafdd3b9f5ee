"""The UI's own ES modules in real Chromium: the fetch-based SSE client (headers,
resuming with Last-Event-ID after a dropped connection), the event-stream parser,
ANSI colours, the waterfall's span order and the SVG charts.

A small HTTP server serves the package's static files and an event stream that
drops its first connection part-way, as a proxy restart would.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mastra_admin.server import ui

from .conftest import CHROMIUM, CHROMIUM_ARGS

STATIC = Path(ui.__file__).parent / "static"
PAGE = b'<!doctype html><html><head><link rel="icon" href="data:,"></head><body></body></html>'


class StreamServer:
    """Static files under /ui/static/, a blank page at /, and /stream: the first
    connection sends events 1-3 and drops; a resumed one continues after its
    Last-Event-ID and ends."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/":
                    self._send(200, "text/html", PAGE)
                elif self.path.startswith("/ui/static/"):
                    target = (STATIC / self.path.removeprefix("/ui/static/")).resolve()
                    if not target.is_file() or STATIC.resolve() not in target.parents:
                        self._send(404, "text/plain", b"not found")
                        return
                    kind = "text/javascript" if target.suffix == ".js" else None
                    self._send(
                        200, kind or mimetypes.guess_type(target.name)[0] or "", target.read_bytes()
                    )
                elif self.path == "/stream":
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                last = self.headers.get("Last-Event-ID")
                server.requests.append(
                    {"authorization": self.headers.get("Authorization"), "last_event_id": last}
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                if last is None:
                    # CRLF line ends, a comment, a multi-line event, then the connection drops.
                    self.wfile.write(b"retry: 50\r\n\r\n: keep-alive\r\n\r\n")
                    for n in (1, 2):
                        self.wfile.write(
                            f"event: line\r\nid: {n}\r\ndata: line {n}\r\n\r\n".encode()
                        )
                    self.wfile.write(b"event: line\nid: 3\ndata: line 3a\ndata: line 3b\n\n")
                    self.wfile.flush()
                    return
                start = int(last) + 1
                for n in range(start, 6):
                    self.wfile.write(f"event: line\nid: {n}\ndata: line {n}\n\n".encode())
                self.wfile.write(b'event: end\ndata: {"status": "succeeded"}\n\n')
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def stream_server() -> Iterator[StreamServer]:
    server = StreamServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, stream_server: StreamServer) -> Iterator[Page]:
    errors: list[str] = []
    context = browser.new_context()
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stream_server.url + "/")
    try:
        yield page
    finally:
        context.close()
    assert errors == []


def test_the_sse_client_sends_the_token_and_resumes_after_a_drop(
    page: Page, stream_server: StreamServer
) -> None:
    seen = page.evaluate(
        """async () => {
            localStorage.setItem('mastraAdmin.token', 'mat_secret-123');
            const { followEvents } = await import('/ui/static/js/lib/sse.js');
            const states = [];
            const events = await new Promise((resolve) => {
                const got = [];
                followEvents('/stream', {
                    until: ['end'],
                    onState: (s) => states.push(s),
                    onEvent: (e) => {
                        got.push([e.type, e.id, e.data]);
                        if (e.type === 'end') resolve(got);
                    },
                });
            });
            return { events, states };
        }"""
    )
    assert seen["events"] == [
        ["line", "1", "line 1"],
        ["line", "2", "line 2"],
        ["line", "3", "line 3a\nline 3b"],
        ["line", "4", "line 4"],
        ["line", "5", "line 5"],
        ["end", "5", '{"status": "succeeded"}'],
    ]
    assert "reconnecting" in seen["states"]
    assert seen["states"][-1] == "closed"
    assert stream_server.requests == [
        {"authorization": "Bearer mat_secret-123", "last_event_id": None},
        {"authorization": "Bearer mat_secret-123", "last_event_id": "3"},
    ]


def test_the_event_stream_parser_takes_text_in_any_pieces(page: Page) -> None:
    events = page.evaluate(
        """async () => {
            const { EventStreamParser } = await import('/ui/static/js/lib/sse.js');
            const parser = new EventStreamParser();
            const text = 'event: line\\r\\nid: 7\\r\\ndata:no space\\r\\ndata:  two spaces\\r\\n\\r\\n'
                + ': comment\\n\\ndata: plain\\n\\nevent: end\\rdata: {}\\r\\r';
            const out = [];
            for (const ch of text) out.push(...parser.feed(ch));  // one character at a time
            out.push(...parser.finish());
            return out.map((e) => [e.type, e.id, e.data]);
        }"""
    )
    assert events == [
        ["line", "7", "no space\n two spaces"],
        ["message", "7", "plain"],
        ["end", "7", "{}"],
    ]


def test_ansi_colours_become_styled_spans(page: Page) -> None:
    rendered = page.evaluate(
        r"""async () => {
            const { renderAnsiLine, newAnsiState } = await import('/ui/static/js/lib/ansi.js');
            const state = newAnsiState();
            const box = document.createElement('pre');
            box.append(renderAnsiLine('\x1b[1;31mError\x1b[0m plain \x1b[38;5;82mgreen\x1b[39m \x1b]0;title\x07done\x1b[K', state));
            const spans = [...box.querySelectorAll('span')].map((s) => [s.textContent, s.className, s.style.color]);
            const carried = document.createElement('pre');
            carried.append(renderAnsiLine('\x1b[32mstill', state), renderAnsiLine('green on the next line\x1b[0m', state));
            const progress = document.createElement('pre');
            progress.append(renderAnsiLine('10%\r20%\r30%', newAnsiState()));
            return {
                text: box.textContent,
                spans,
                carried: [...carried.querySelectorAll('span')].map((s) => s.style.color),
                progress: progress.textContent,
                html: box.innerHTML.includes('<script'),
            };
        }"""
    )
    assert rendered["text"] == "Error plain green done"
    assert rendered["spans"] == [
        ["Error", "ansi ansi-bold", "rgb(229, 83, 75)"],
        ["green", "ansi", "rgb(95, 255, 0)"],
    ]
    assert rendered["carried"] == ["rgb(87, 171, 90)", "rgb(87, 171, 90)"]
    assert rendered["progress"] == "30%"


def test_ansi_text_is_never_markup(page: Page) -> None:
    html = page.evaluate(
        r"""async () => {
            const { renderAnsiLine } = await import('/ui/static/js/lib/ansi.js');
            const box = document.createElement('pre');
            box.append(renderAnsiLine('\x1b[31m<img src=x onerror=alert(1)>\x1b[0m'));
            return box.innerHTML;
        }"""
    )
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_waterfall_orders_spans_as_a_tree(page: Page) -> None:
    order = page.evaluate(
        """async () => {
            const { orderSpans } = await import('/ui/static/js/lib/waterfall.js');
            const span = (id, parent, ms) => ({
                span_id: id, parent_span_id: parent, name: id, status: 'ok',
                start_time: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms)).toISOString(),
                end_time: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms + 5)).toISOString(),
            });
            const tree = {
                spans: [span('tool', 'agent', 30), span('llm', 'agent', 10), span('agent', null, 0),
                        span('orphan', 'gone', 5), span('retry', 'llm', 12)],
                children: { agent: ['tool', 'llm'], llm: ['retry'] },
                roots: ['agent'],
            };
            return orderSpans(tree).map((r) => [r.span.span_id, r.depth]);
        }"""
    )
    assert order == [["agent", 0], ["llm", 1], ["retry", 2], ["tool", 1], ["orphan", 0]]


def test_charts_draw_bars_and_lines_in_svg(page: Page) -> None:
    drawn = page.evaluate(
        """async () => {
            const { timeChart } = await import('/ui/static/js/lib/charts.js');
            const buckets = [0, 1, 2, 3].map((h) => new Date(Date.UTC(2026, 0, 1, h)));
            const bars = timeChart({ title: 'Requests', kind: 'bar', buckets,
                series: [{ name: 'count', values: [3, 0, 7, 1] }] });
            const lines = timeChart({ title: 'Latency', buckets,
                series: [{ name: 'p50', values: [10, null, 30, 20] }, { name: 'p95', values: [15, null, 80, 40] }],
                yFormat: (v) => `${v} ms` });
            document.body.append(bars, lines);
            await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
            const svgOf = (f) => f.querySelector('svg');
            return {
                rects: svgOf(bars).querySelectorAll('rect').length,
                label: svgOf(bars).getAttribute('aria-label'),
                ticks: [...svgOf(bars).querySelectorAll('text')].map((t) => t.textContent).slice(0, 5),
                paths: [...svgOf(lines).querySelectorAll('path')].map((p) => p.getAttribute('d').split('M').length - 1),
                legend: lines.querySelector('.legend').textContent,
                tableRows: lines.querySelectorAll('details tbody tr').length,
            };
        }"""
    )
    assert drawn["rects"] == 3  # an empty interval draws no bar
    assert drawn["label"] == "Requests. count: highest 7"
    assert drawn["ticks"] == ["0", "2", "4", "6", "8"]
    assert drawn["paths"] == [2, 2]  # each line breaks where an interval has no value
    assert drawn["legend"] == "p50p95"
    assert drawn["tableRows"] == 4


def test_every_module_loads(page: Page) -> None:
    """Each page module and library imports cleanly (a syntax error fails here first)."""
    modules = sorted(
        f"/ui/static/{path.relative_to(STATIC).as_posix()}"
        for path in (STATIC / "js").rglob("*.js")
        if path.name != "app.js"  # the entry point runs the page; the pages test it
    )
    assert len(modules) > 20
    loaded = page.evaluate(
        """async (modules) => {
            const out = {};
            for (const m of modules) out[m] = Object.keys(await import(m)).sort();
            return out;
        }""",
        modules,
    )
    for module, exports in loaded.items():
        if "/pages/" in module:
            assert "render" in exports, module
        else:
            assert exports, module
