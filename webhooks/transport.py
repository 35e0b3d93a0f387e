"""The HTTP POST of a delivery, refusing private targets after DNS resolution.

The standard library's ``http.client`` is used on purpose: the connection goes to the very
address that was checked (no second lookup that a rebinding DNS answer could turn to
127.0.0.1), TLS still verifies the certificate of the URL's host name (SNI and Host header
keep the name), redirects are never followed, and the read of the answer is bounded in size
and time.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import SplitResult

from webhooks import rules


class TargetRefused(Exception):
    """The target resolves to an address deliveries may not reach (or does not resolve)."""


@dataclass(frozen=True)
class HttpOutcome:
    status_code: int
    latency_ms: int
    body_excerpt: str


def resolve_target(parts: SplitResult, *, allow_private: bool) -> list[str]:
    """The addresses to connect to, every one of them allowed; raises TargetRefused.

    All addresses of the name must be public: one private answer among public ones is how a
    rebinding attack would hide.
    """
    host = parts.hostname or ""
    literal = rules.ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(
                host, rules.default_port(parts), type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"url host {host} cannot be resolved") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRefused(f"url host {host} cannot be resolved")
    if not allow_private:
        refused = [a for a in addresses if rules.is_forbidden_address(a)]
        if refused:
            raise TargetRefused(
                f"url host {host} resolves to a private, loopback, link-local or reserved "
                f"address ({refused[0]})"
            )
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allow_http: bool,
    allow_private: bool,
) -> HttpOutcome:
    """POST ``body`` to ``url``; raises TargetRefused, or OSError/HTTPException on a network
    failure. ``timeout`` bounds the connect and each read; the whole answer is read for at
    most that long again, and only its first RESPONSE_BODY_LIMIT bytes are kept."""
    try:
        parts = rules.parse_target_url(url, allow_http=allow_http)
    except rules.UrlRefused as exc:
        raise TargetRefused(str(exc)) from exc
    address = resolve_target(parts, allow_private=allow_private)[0]
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(
        parts.hostname or "", rules.default_port(parts), address=address, timeout=timeout
    )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    started = time.monotonic()
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = _read_bounded(response, deadline=time.monotonic() + timeout)
        latency_ms = int((time.monotonic() - started) * 1000)
        return HttpOutcome(status_code=response.status, latency_ms=latency_ms, body_excerpt=excerpt)
    finally:
        connection.close()


def _read_bounded(response: http.client.HTTPResponse, *, deadline: float) -> str:
    chunks: list[bytes] = []
    size = 0
    while size < rules.RESPONSE_BODY_LIMIT and time.monotonic() < deadline:
        chunk = response.read1(rules.RESPONSE_BODY_LIMIT - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return rules.response_excerpt(b"".join(chunks))
