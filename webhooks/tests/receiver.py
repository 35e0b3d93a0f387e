"""A real HTTP receiver for the webhook tests: ``http.server`` in a thread on 127.0.0.1:0.

It records every request (path, headers, body) and answers with the status the test sets.
``hold`` makes it wait on a threading.Event before answering (a hanging receiver), so a test
proves independence with events, never with sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # wall clock of arrival (benchmarks)


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    status: int = 200
    answer: bytes = b"ok"
    extra_headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [r.body for r in self.requests]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait (for events, with a deadline) until ``count`` requests have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.requests) >= count:
                    return True
                self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.arrived.wait(remaining)


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            receiver.arrived.set()
            if receiver.hold is not None:
                receiver.hold.wait(60)
            self.send_response(receiver.status)
            for name, value in receiver.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(receiver.answer)))
            self.end_headers()
            self.wfile.write(receiver.answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(**options: Any) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    receiver = Receiver(server=server, **options)
    server.RequestHandlerClass = _handler_for(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
