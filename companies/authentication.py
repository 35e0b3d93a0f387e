"""Bearer JWT authentication (HS256, PyJWT). The subject is a user; user and company must be
active on every request, so deactivation takes effect at once. Every access token names its
login session (``sid``), and dies with it at its next request: logout, refresh-token reuse,
a password change or reset, a deactivated user (their sessions are deleted). A token without
a session is refused.

Cost per request: a token's signature is verified once per process (then only its expiry);
the user, its company and whether the session lives come from the principal cache (one
cache round trip, see ``companies/principals.py``) or one indexed query.
Session activity is written at most once per clock minute per user: the first request of a
minute wins the cache ``add`` and issues a single UPDATE; the rest only touch the cache.
"""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from companies import principals
from companies.models import User

ALGORITHM = "HS256"
ACTIVITY_INTERVAL_SECONDS = 60

logger = logging.getLogger(__name__)


def access_token_for(user: User, *, session_id: uuid.UUID) -> str:
    now = timezone.now()
    company = user.company
    payload: dict[str, Any] = {
        "sub": str(user.id),
        "email": user.email,
        "role": user.role,
        "companyId": str(company.id) if company else None,
        "companyType": company.company_type if company else None,
        "iat": int(now.timestamp()),
        "exp": int((now + settings.ACCESS_TOKEN_LIFETIME).timestamp()),
        "typ": "access",
        "sid": str(session_id),
    }
    return jwt.encode(payload, settings.JWT_SECRET, algorithm=ALGORITHM)


LEEWAY_SECONDS = 5


@lru_cache(maxsize=4096)
def _verified_claims(secret: str, token: str) -> dict[str, Any]:
    """The claims of a token whose signature and claims checked out once (per process).

    A token's bytes never change and its signature was checked with ``secret``: only the
    expiry can turn it invalid later, and ``decode_access_token`` checks that on every use.
    Failures raise, so they are never cached.
    """
    return jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "exp", "iat"]},
        leeway=LEEWAY_SECONDS,
    )


def decode_access_token(token: str) -> dict[str, Any]:
    claims = _verified_claims(settings.JWT_SECRET, token)
    if int(claims["exp"]) + LEEWAY_SECONDS <= timezone.now().timestamp():
        raise jwt.ExpiredSignatureError("Signature has expired")
    return dict(claims)


def bearer_claims(header: bytes) -> tuple[dict[str, Any], uuid.UUID, uuid.UUID] | None:
    """The claims of an ``Authorization`` header's access token with its user and session ids,
    None without a header; AuthenticationFailed for anything but ``Bearer <valid access token>``."""
    parts = header.split()
    if not parts:
        return None
    if parts[0].lower() != JWTAuthentication.keyword or len(parts) != 2:
        raise AuthenticationFailed()
    try:
        claims = decode_access_token(parts[1].decode("ascii"))
        if claims.get("typ") != "access":
            raise AuthenticationFailed()
        return claims, uuid.UUID(str(claims["sub"])), uuid.UUID(str(claims["sid"]))
    except (jwt.PyJWTError, ValueError, UnicodeDecodeError, KeyError) as exc:
        raise AuthenticationFailed() from exc


def admitted(user: User | None, claims: dict[str, Any]) -> bool:
    """Whether the token's principal may act: an active user of an active company, and a token
    issued after the user's last password reset."""
    if user is None or not user.is_active:
        return False
    if user.company is None or not user.company.is_active:
        return False
    # A password reset refuses every access token issued before it (whole seconds, as `iat`
    # is: a token from the very same second survives, a new login never fails).
    return user.tokens_valid_after is None or int(claims["iat"]) >= int(
        user.tokens_valid_after.timestamp()
    )


class JWTAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, dict[str, Any]] | None:
        parsed = bearer_claims(get_authorization_header(request))
        if parsed is None:
            return None
        claims, user_id, session_id = parsed
        user = principals.principal(
            user_id,
            claims.get("companyId"),
            session_id=session_id,
            prefetch=getattr(request, "read_cache_prefetch", None),
        )
        if user is None or not admitted(user, claims):
            raise AuthenticationFailed()
        record_activity(user)
        return user, claims

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


# Users this process has already recorded (or seen recorded) in their current minute: their
# later requests of that minute skip the cache round trip. Bounded; plain dict operations are
# atomic under the GIL, and a race only costs one redundant ``cache.add``.
ACTIVITY_SEEN_MAX = 10_000
_activity_seen: dict[uuid.UUID, int] = {}


def activity_recorded(user_id: uuid.UUID) -> bool:
    """Whether this process already recorded (or saw recorded) the user's activity this
    minute: ``record_activity`` would then neither ask the cache nor write."""
    minute = int(timezone.now().timestamp()) // ACTIVITY_INTERVAL_SECONDS
    return _activity_seen.get(user_id) == minute


def record_activity(user: User) -> None:
    """Write ``last_activity_at`` at most once per clock minute per user, without a write
    per request.

    ``cache.add`` on a key named after the current minute succeeds for the first request of
    that minute only (atomic in Redis, so all workers agree); that request does one UPDATE and
    the in-memory user reflects it. A cache outage skips the bookkeeping instead of failing
    the request.
    """
    now = timezone.now()
    minute = int(now.timestamp()) // ACTIVITY_INTERVAL_SECONDS
    if _activity_seen.get(user.pk) == minute:
        return  # this process already asked the cache this minute: the answer is "not first"
    try:
        first_this_minute = cache.add(
            f"activity:{user.pk}:{minute}", 1, timeout=ACTIVITY_INTERVAL_SECONDS + 1
        )
    except Exception:
        logger.warning("session activity not recorded: cache unavailable", exc_info=True)
        return
    if len(_activity_seen) >= ACTIVITY_SEEN_MAX:
        _activity_seen.clear()
    _activity_seen[user.pk] = minute
    if first_this_minute:
        User.objects.filter(pk=user.pk).update(last_activity_at=now)  # invalidates the principal
        user.last_activity_at = now
