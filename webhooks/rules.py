"""Pure rules of webhooks: the event catalogue, target URLs and addresses, the retry schedule,
the Standard Webhooks signature and the body. No ORM, no network."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
from datetime import timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

# Events a company can subscribe to (empty list = all of them). Account events (invitations,
# password resets) are not offered: they concern one person, not a company's systems.
EVENT_TYPES: tuple[str, ...] = (
    "company.registered",
    "contract.created",
    "contract.paused",
    "contract.resumed",
    "contract.terminated",
    "contract.updated",
    "servicedays.expected_confirmed",
    "servicedays.served_confirmed",
    "servicedays.fallback_applied",
)
# Sent by "send test event" to one endpoint, whatever it subscribes to.
TEST_EVENT_TYPE = "webhook.test"

URL_MAX_LENGTH = 2000
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 24

# Wait before attempt n + 1 after n failed attempts (Standard Webhooks' guidance, shortened
# to finish within a day): 10 attempts over ~22.6 h, then the delivery is given up.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1

RESPONSE_BODY_LIMIT = 4096
ERROR_LIMIT = 1000


class UrlRefused(ValueError):
    """A target URL that may not be used; the message is fit for the API's 400."""


def unknown_event_types(event_types: list[str]) -> list[str]:
    return [t for t in event_types if t not in EVENT_TYPES]


def subscribes(event_types: list[str], event_type: str) -> bool:
    return not event_types or event_type in event_types


def parse_target_url(url: str, *, allow_http: bool) -> SplitResult:
    """The URL split, if it may be a webhook target: https (http only when allowed), a host, no
    credentials, no whitespace or control characters. Addresses are checked separately."""
    if len(url) > URL_MAX_LENGTH:
        raise UrlRefused(f"url must be shorter than or equal to {URL_MAX_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UrlRefused("url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("url must be a valid URL") from exc
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise UrlRefused("url must use https" if not allow_http else "url must use https or http")
    if not parts.hostname:
        raise UrlRefused("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("url must not contain credentials")
    if port == 0:
        raise UrlRefused("url must not use port 0")
    try:
        parts.hostname.encode("idna")
    except UnicodeError as exc:
        raise UrlRefused("url must name a valid host") from exc
    return parts


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def is_forbidden_address(address: str) -> bool:
    """Loopback, private, link-local (cloud metadata: 169.254.169.254), shared, reserved,
    multicast or unspecified: anything that is not a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_forbidden_address(str(mapped))
    return not ip.is_global or ip.is_multicast


def ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def retry_delay(*, attempts: int, spread: float = 0.0) -> timedelta | None:
    """Wait after ``attempts`` failed attempts, or None when the delivery is to be given up.

    ``spread`` in [0, 1) adds up to 10% of the wait so the deliveries of one outage do not
    all come back in the same instant (derived from the delivery id: reproducible).
    """
    if attempts < 1:
        raise ValueError("attempts counts failed attempts and starts at 1")
    if attempts > len(RETRY_SCHEDULE):
        return None
    base = RETRY_SCHEDULE[attempts - 1]
    return base + base * (0.1 * spread)


def spread_of(delivery_id: Any) -> float:
    digest = hashlib.sha256(str(delivery_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(*, secret: str, message_id: str, timestamp: int, body: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery_body(*, event_type: str, timestamp: str, data: Any) -> str:
    """``{"type", "timestamp", "data"}`` as compact JSON: the exact text signed and sent."""
    return json.dumps(
        {"type": event_type, "timestamp": timestamp, "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def response_excerpt(raw: bytes) -> str:
    """The start of a response body as storable text: decoded leniently, NULs dropped."""
    text = raw[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace")
    return text.replace("\x00", "")


def bounded_error(text: str) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300
