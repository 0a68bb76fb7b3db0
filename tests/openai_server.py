"""A loopback HTTP server speaking the OpenAI chat-completions and embeddings wire format.

openai 3.x sends through httpx2, which respx cannot intercept, so tests run the real
client against this server. Replies are scripted per test; every request is recorded.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

ChatReply = Callable[[dict[str, Any]], "str | tuple[int, dict[str, Any]]"]


@dataclass
class FakeOpenAI:
    """Scripted behaviour: `chat(request)` returns the assistant's content (a string) or
    `(status, body)` for an error; `embedding(text)` returns a vector."""

    chat: ChatReply = lambda request: "{}"
    embedding: Callable[[str], list[float]] = lambda text: [float(len(text)), 1.0, 0.0]
    embedding_status: int = 200
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def bodies(self, path_suffix: str) -> list[dict[str, Any]]:
        return [body for path, body in self.requests if path.endswith(path_suffix)]


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            fake.requests.append((self.path, body))
            if self.path.endswith("/chat/completions"):
                status, payload = self._chat(body)
            elif self.path.endswith("/embeddings"):
                status, payload = self._embeddings(body)
            else:
                status, payload = 404, {"error": {"message": "not found"}}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            reply = fake.chat(body)
            if isinstance(reply, tuple):
                return reply
            return 200, {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": reply},
                    }
                ],
                "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
            }

        def _embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            if fake.embedding_status != 200:
                return fake.embedding_status, {"error": {"message": "embedding model down"}}
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = []
            for i, text in enumerate(texts):
                vector = fake.embedding(text)
                if body.get("encoding_format") == "base64":
                    encoded = base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes())
                    vector = encoded.decode()
                data.append({"object": "embedding", "index": i, "embedding": vector})
            tokens = sum(len(t.split()) for t in texts)
            return 200, {
                "object": "list",
                "model": body["model"],
                "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_openai(fake: FakeOpenAI | None = None) -> Iterator[FakeOpenAI]:
    """Serve `fake` on 127.0.0.1 (a free port) for the duration of the block."""
    fake = fake or FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
