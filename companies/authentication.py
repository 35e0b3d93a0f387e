"""Bearer JWT authentication (HS256, PyJWT). The subject is a user; user and company must be
active on every request, so deactivation takes effect at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from companies.models import User

ALGORITHM = "HS256"


def access_token_for(user: User, *, session_id: uuid.UUID | None = None) -> str:
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
    }
    if session_id:
        payload["sid"] = str(session_id)
    return jwt.encode(payload, settings.JWT_SECRET, algorithm=ALGORITHM)


def decode_access_token(token: str) -> dict[str, Any]:
    return jwt.decode(
        token,
        settings.JWT_SECRET,
        algorithms=[ALGORITHM],
        options={"require": ["sub", "exp", "iat"]},
        leeway=5,
    )


class JWTAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, dict[str, Any]] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword or len(header) != 2:
            raise AuthenticationFailed()
        try:
            claims = decode_access_token(header[1].decode("ascii"))
            if claims.get("typ") != "access":
                raise AuthenticationFailed()
            user_id = uuid.UUID(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError, UnicodeDecodeError, KeyError) as exc:
            raise AuthenticationFailed() from exc
        user = User.objects.select_related("company").filter(pk=user_id).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed()
        if user.company is None or not user.company.is_active:
            raise AuthenticationFailed()
        request.token_issued_at = datetime.fromtimestamp(claims["iat"], tz=UTC)  # type: ignore[attr-defined]
        return user, claims

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
