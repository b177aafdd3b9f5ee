"""A small asynchronous client of the Docker Engine API: the calls the runner makes.

Over ``httpx`` on the engine's socket (``unix:///var/run/docker.sock``) or TCP, at a
pinned API version, so that what the runner asks means the same on every engine it
supports (20.10 and newer). The runner's figures of the candidates (the ``docker``
SDK, ``aiodocker``, this) are in the README: this one is asynchronous without a
thread per call, and brings no dependency beyond ``httpx``.

Every call raises ``EngineError`` with the engine's own message (``status`` 404 means
"no such object"), or ``EngineUnavailable`` when the engine cannot be reached.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

__all__ = ["API_VERSION", "DockerEngine", "EngineError", "EngineUnavailable"]

API_VERSION = "1.41"
"""Docker Engine 20.10's API version: the oldest engine the runner supports."""

_STREAM_HEADER = struct.Struct(">BxxxI")


class EngineError(Exception):
    """The engine refused a call; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EngineUnavailable(EngineError):
    """The engine did not answer (not running, or its socket is not ours to use)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


def _filters(labels: Mapping[str, str | None]) -> str:
    """The engine's ``filters`` parameter matching every given label (``None``: any
    value)."""
    return json.dumps(
        {"label": [key if value is None else f"{key}={value}" for key, value in labels.items()]}
    )


class DockerEngine:
    """One connection pool to one engine. ``url`` is ``unix:///path`` or ``tcp://h:p``."""

    def __init__(self, url: str = "unix:///var/run/docker.sock", *, timeout_s: float = 60.0):
        parts = urlsplit(url)
        if parts.scheme == "unix":
            transport = httpx.AsyncHTTPTransport(uds=parts.path, verify=False)
            base = "http://docker"
        elif parts.scheme in ("tcp", "http"):
            transport = httpx.AsyncHTTPTransport(verify=False)
            base = f"http://{parts.netloc}"
        else:
            raise ValueError(f"unsupported Docker engine URL {url!r} (unix:// or tcp://)")
        self.url = url
        self._client = httpx.AsyncClient(
            transport=transport,
            base_url=f"{base}/v{API_VERSION}",
            timeout=httpx.Timeout(timeout_s, connect=5.0),
        )

    async def close(self) -> None:
        await self._client.aclose()

    # --- plumbing ------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        extra: dict[str, Any] = {}
        if timeout_s is not None:
            extra["timeout"] = httpx.Timeout(timeout_s, connect=5.0)
        try:
            response = await self._client.request(
                method,
                path,
                params=params,
                json=body,
                content=content,
                headers=headers,
                **extra,
            )
        except httpx.TransportError as exc:
            raise EngineUnavailable(
                f"the Docker engine at {self.url} did not answer: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise EngineError(response.status_code, _message(response))
        return response

    @contextlib.asynccontextmanager
    async def _stream(
        self, path: str, params: Mapping[str, str], *, timeout_s: float | None
    ) -> AsyncIterator[httpx.Response]:
        """A GET whose body is read as it comes (a tar, a log, events)."""
        request = self._client.build_request(
            "GET", path, params=params, timeout=httpx.Timeout(timeout_s, connect=5.0)
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise EngineUnavailable(
                f"the Docker engine at {self.url} did not answer: {exc}"
            ) from exc
        try:
            if response.status_code >= 400:
                await response.aread()
                raise EngineError(response.status_code, _message(response))
            yield response
        finally:
            await response.aclose()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._call(method, path, **kwargs)
        return response.json() if response.content else None

    # --- the engine ----------------------------------------------------------------

    async def ping(self) -> None:
        await self._call("GET", "/_ping", timeout_s=5.0)

    async def version(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("GET", "/version")
        return result

    # --- containers ----------------------------------------------------------------

    async def create_container(self, name: str, config: Mapping[str, Any]) -> str:
        result = await self._json("POST", "/containers/create", params={"name": name}, body=config)
        return str(result["Id"])

    async def start(self, container: str) -> None:
        await self._call("POST", f"/containers/{quote(container)}/start")

    async def stop(self, container: str, grace_s: float) -> None:
        """SIGTERM (the image's stop signal), SIGKILL after ``grace_s``; returns when it
        has stopped. A stopped container is no error."""
        seconds = max(0, round(grace_s))
        try:
            await self._call(
                "POST",
                f"/containers/{quote(container)}/stop",
                params={"t": seconds},
                timeout_s=seconds + 30.0,
            )
        except EngineError as exc:
            if exc.status != 304:
                raise

    async def kill(self, container: str, signal: str = "KILL") -> None:
        try:
            await self._call(
                "POST", f"/containers/{quote(container)}/kill", params={"signal": signal}
            )
        except EngineError as exc:
            if exc.status not in (404, 409):  # gone, or not running
                raise

    async def remove(self, container: str) -> None:
        """Remove a container (killing it if it runs) with its anonymous volumes; a
        missing one is no error."""
        try:
            await self._call(
                "DELETE", f"/containers/{quote(container)}", params={"force": "1", "v": "1"}
            )
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def inspect(self, container: str) -> dict[str, Any] | None:
        """The container's state and configuration, ``None`` if there is none."""
        try:
            result: dict[str, Any] = await self._json("GET", f"/containers/{quote(container)}/json")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def wait(self, container: str) -> int:
        """Wait until the container stops; its exit code."""
        result = await self._json(
            "POST", f"/containers/{quote(container)}/wait", timeout_s=365 * 86_400.0
        )
        return int(result.get("StatusCode", -1))

    async def containers(self, labels: Mapping[str, str | None]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._json(
            "GET", "/containers/json", params={"all": "1", "filters": _filters(labels)}
        )
        return result

    async def stats(self, container: str) -> dict[str, Any]:
        """One sample of the container's figures, at once (``one-shot``: without it the
        engine waits for a second sample, a second or two, to fill ``precpu_stats``)."""
        result: dict[str, Any] = await self._json(
            "GET",
            f"/containers/{quote(container)}/stats",
            params={"stream": "0", "one-shot": "1"},
        )
        return result

    async def stats_stream(self, container: str) -> AsyncIterator[dict[str, Any]]:
        """The container's figures as the engine collects them (about once a second),
        each with the previous CPU sample, until it stops."""
        async with self._stream(
            f"/containers/{quote(container)}/stats", {"stream": "1"}, timeout_s=None
        ) as response:
            try:
                async for line in response.aiter_lines():
                    if line.strip():
                        yield json.loads(line)
            except httpx.TransportError:
                return

    async def put_archive(self, container: str, path: str, tar: AsyncIterator[bytes]) -> None:
        await self._call(
            "PUT",
            f"/containers/{quote(container)}/archive",
            params={"path": path},
            content=tar,
            headers={"Content-Type": "application/x-tar"},
            timeout_s=3600.0,
        )

    async def get_archive(self, container: str, path: str) -> AsyncIterator[bytes]:
        """A tar of ``path`` in the container, streamed."""
        async with self._stream(
            f"/containers/{quote(container)}/archive", {"path": path}, timeout_s=3600.0
        ) as response:
            async for chunk in response.aiter_bytes():
                yield chunk

    async def logs(
        self,
        container: str,
        *,
        follow: bool,
        since: float = 0.0,
        timestamps: bool = False,
        tail: str = "all",
    ) -> AsyncIterator[tuple[str, bytes]]:
        """The container's output as ``(stream, bytes)`` chunks (``stdout``/``stderr``),
        with ``timestamps`` each line prefixed by the engine's RFC 3339 time; with
        ``follow``, until it stops."""
        params = {
            "stdout": "1",
            "stderr": "1",
            "timestamps": "1" if timestamps else "0",
            "follow": "1" if follow else "0",
            "since": f"{since:.9f}",
            "tail": tail,
        }
        async with self._stream(
            f"/containers/{quote(container)}/logs", params, timeout_s=None
        ) as response:
            buffer = b""
            try:
                async for chunk in response.aiter_raw():
                    buffer += chunk
                    while len(buffer) >= _STREAM_HEADER.size:
                        kind, size = _STREAM_HEADER.unpack_from(buffer)
                        end = _STREAM_HEADER.size + size
                        if len(buffer) < end:
                            break
                        stream = "stderr" if kind == 2 else "stdout"
                        yield stream, buffer[_STREAM_HEADER.size : end]
                        buffer = buffer[end:]
            except httpx.TransportError:
                return  # the engine ended the stream (it restarted, say)

    async def events(
        self, labels: Mapping[str, str | None], *, since: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Container events of containers with these labels, as they happen (and those
        after ``since``, a Unix time, first)."""
        filters = json.loads(_filters(labels))
        filters["type"] = ["container"]
        params = {"filters": json.dumps(filters)}
        if since is not None:
            params["since"] = f"{since:.9f}"
        async with self._stream("/events", params, timeout_s=None) as response:
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)

    async def commit(
        self, container: str, *, repo: str, tag: str, config: Mapping[str, Any]
    ) -> str:
        """A new image of the container's filesystem with ``config`` (``Cmd``,
        ``User``, ``Labels`` ...); its id."""
        result = await self._json(
            "POST",
            "/commit",
            params={"container": container, "repo": repo, "tag": tag, "pause": "0"},
            body=config,
            timeout_s=600.0,
        )
        return str(result["Id"])

    # --- images ----------------------------------------------------------------------

    async def image(self, reference: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._json("GET", f"/images/{quote(reference)}/json")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def images(self, labels: Mapping[str, str | None]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._json(
            "GET", "/images/json", params={"filters": _filters(labels)}
        )
        return result

    async def remove_image(self, reference: str) -> None:
        try:
            await self._call("DELETE", f"/images/{quote(reference)}", params={"force": "1"})
        except EngineError as exc:
            if exc.status != 404:
                raise

    # --- networks and volumes -----------------------------------------------------

    async def network(self, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self._json("GET", f"/networks/{quote(name)}")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def create_network(self, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
        """A bridge network of its own (or the existing one of that name)."""
        found = await self.network(name)
        if found is not None:
            return found
        try:
            await self._json(
                "POST",
                "/networks/create",
                body={
                    "Name": name,
                    "Driver": "bridge",
                    "CheckDuplicate": True,
                    "Labels": dict(labels),
                    # No traffic between containers of one network but through the
                    # published ports; each deployment has its own network anyway.
                    "Options": {"com.docker.network.bridge.enable_icc": "false"},
                },
            )
        except EngineError as exc:
            if exc.status != 409:  # created by a concurrent call
                raise
        created = await self.network(name)
        if created is None:
            raise EngineError(404, f"network {name} vanished as it was created")
        return created

    async def networks(self, labels: Mapping[str, str | None]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._json(
            "GET", "/networks", params={"filters": _filters(labels)}
        )
        return result

    async def remove_network(self, name: str) -> None:
        try:
            await self._call("DELETE", f"/networks/{quote(name)}")
        except EngineError as exc:
            if exc.status not in (404, 403, 409):  # gone, or still in use
                raise

    async def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        await self._json("POST", "/volumes/create", body={"Name": name, "Labels": dict(labels)})

    async def remove_volume(self, name: str) -> None:
        try:
            await self._call("DELETE", f"/volumes/{quote(name)}", params={"force": "1"})
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def volumes(self, labels: Mapping[str, str | None]) -> list[dict[str, Any]]:
        result = await self._json("GET", "/volumes", params={"filters": _filters(labels)})
        return list((result or {}).get("Volumes") or [])


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return f"HTTP {response.status_code}"
