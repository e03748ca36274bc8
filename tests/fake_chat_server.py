"""A small local HTTP server speaking the OpenAI chat-completions protocol, for tests of the openai backend and
of endpoint models. A subclass of ``ChatHandler`` says what to answer (``reply``); every call's Authorization
header, model and body are recorded in the class's ``calls``."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class ChatHandler(BaseHTTPRequestHandler):
    calls: list[dict] = []

    def reply(self, body: dict) -> tuple[int, list[str]]:
        """(HTTP status, one text per choice); a status other than 200 answers with a short error body."""
        raise NotImplementedError

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append({"auth": self.headers.get("Authorization"), "model": body.get("model"), "body": body})
        status, texts = self.reply(body)
        if status != 200:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        choices = [{"index": i, "message": {"content": t}, "finish_reason": "stop"} for i, t in enumerate(texts)]
        data = json.dumps({"choices": choices, "usage": {"completion_tokens": 3 * len(texts)}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@contextmanager
def chat_server(handler: type[ChatHandler]) -> Iterator[tuple[ThreadingHTTPServer, str]]:
    """Serve ``handler`` on 127.0.0.1 (a free port) for the ``with`` block: (server, base URL ending in /v1)."""
    handler.calls = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()
