"""Guards the mesh's HTTP servers share: a cap on request bodies (413 above it), read
before any handler parses them, whether the body declares its length or streams."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Message = dict[str, Any]


def detail(message: str) -> dict[str, Any]:
    """FastAPI's error shape."""
    return {"detail": message}


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` is refused with 413; smaller bodies are
    buffered (so at most `max_bytes` per request is ever held) and passed on."""

    def __init__(
        self, app: Any, max_bytes: int, shape: Callable[[str], dict[str, Any]] = detail
    ) -> None:
        self.app, self.max_bytes, self.shape = app, max_bytes, shape

    async def __call__(self, scope: Message, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Callable) -> None:
        message = f"the request body is larger than {self.max_bytes:,} bytes (MESH_MAX_BODY_BYTES)"
        payload = json.dumps(self.shape(message)).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
