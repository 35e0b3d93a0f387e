"""HTTP API of accounts: auth (reference §3.1), caterings/clients (§3.2-3.3), users (§3.4),
seed (§3.9). Thin views: validate the input, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chefops.api import fields
from chefops.api.errors import error_body
from chefops.api.fields import parse_path_uuid
from chefops.api.pagination import PagePagination
from chefops.api.permissions import ADMINS, IsCompanyMember, RolesByMethod
from chefops.api.schema import errors
from chefops.api.serializers import StrictSerializer, validated_body, validated_query_data
from chefops.demo import run_seeders
from companies import selectors, services
from companies.demo import DEMO_PASSWORD, demo_logins
from companies.models import CompanyStatus, CompanyType, User
from companies.serializers import (
    CateringCreateInput,
    CateringOutput,
    CateringUpdateInput,
    ChangePasswordInput,
    ClientCreateInput,
    ClientOutput,
    ClientUpdateInput,
    ForgotPasswordInput,
    LoginInput,
    MessageOutput,
    RefreshTokenInput,
    ResetPasswordInput,
    SeedOutput,
    SessionStatusOutput,
    TokensOutput,
    UserCreateInput,
    UserOutput,
    UserUpdateInput,
)
from companies.throttling import AuthIdentityThrottle, AuthIPThrottle

FORGOT_PASSWORD_MESSAGE = "If an account exists with this email, a reset link has been sent"  # noqa: S105 - not a secret


def _actor(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # guaranteed by the permission classes
    return user


class PublicApi(APIView):
    """No authentication at all: a stale Bearer header the frontend still sends must not turn
    a public route into a 401."""

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [AllowAny]


class AuthThrottledApi(PublicApi):
    throttle_classes = [AuthIPThrottle, AuthIdentityThrottle]
    throttle_scope = ""
    throttle_identity_field = ""


def _tokens_body(issued: services.IssuedTokens) -> dict[str, Any]:
    return dict(
        TokensOutput(
            {
                "access_token": issued.access_token,
                "refresh_token": issued.refresh_token,
                "expires_in": issued.expires_in,
                "company": issued.company,
                "user": issued.user,
            }
        ).data
    )


# --- auth ------------------------------------------------------------------------------------


class LoginApi(AuthThrottledApi):
    throttle_scope = "login"
    throttle_identity_field = "email"

    @extend_schema(
        tags=["auth"],
        auth=[],
        request=LoginInput,
        responses={200: TokensOutput, **errors(401)},
    )
    def post(self, request: Request) -> Response:
        data = validated_body(LoginInput, request)
        issued = services.auth_login(
            email=data["email"],
            password=data["password"],
            remember_me=bool(data.get("remember_me")),
        )
        return Response(_tokens_body(issued))


class RefreshApi(AuthThrottledApi):
    throttle_scope = "refresh"
    throttle_identity_field = "refresh_token"

    @extend_schema(
        tags=["auth"],
        auth=[],
        request=RefreshTokenInput,
        responses={200: TokensOutput, **errors(401)},
    )
    def post(self, request: Request) -> Response:
        data = validated_body(RefreshTokenInput, request)
        return Response(_tokens_body(services.auth_refresh(refresh_token=data["refresh_token"])))


class LogoutApi(APIView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        tags=["auth"],
        request=RefreshTokenInput,
        responses={200: MessageOutput},
    )
    def post(self, request: Request) -> Response:
        data = validated_body(RefreshTokenInput, request)
        services.auth_logout(user=_actor(request), refresh_token=data["refresh_token"])
        return Response({"message": "Logged out successfully"})


class ChangePasswordApi(APIView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        tags=["auth"],
        request=ChangePasswordInput,
        responses={200: MessageOutput, **errors(401)},
    )
    def post(self, request: Request) -> Response:
        data = validated_body(ChangePasswordInput, request)
        services.auth_change_password(user=_actor(request), **data)
        return Response({"message": "Password changed successfully"})


class ForgotPasswordApi(AuthThrottledApi):
    throttle_scope = "forgot-password"
    throttle_identity_field = "email"

    @extend_schema(
        tags=["auth"],
        auth=[],
        request=ForgotPasswordInput,
        responses={200: MessageOutput},
    )
    def post(self, request: Request) -> Response:
        data = validated_body(ForgotPasswordInput, request)
        services.auth_forgot_password(email=data["email"])
        return Response({"message": FORGOT_PASSWORD_MESSAGE})


class ResetPasswordApi(AuthThrottledApi):
    throttle_scope = "reset-password"
    throttle_identity_field = "token"

    @extend_schema(
        tags=["auth"],
        auth=[],
        request=ResetPasswordInput,
        responses={200: MessageOutput},
    )
    def post(self, request: Request) -> Response:
        data = validated_body(ResetPasswordInput, request)
        services.auth_reset_password(token=data["token"], password=data["password"])
        return Response({"message": "Password reset successfully"})


class SessionStatusApi(APIView):
    """Polled in a tight loop by the frontend: the authentication's single query is the only
    one, and no throttle applies."""

    permission_classes = [IsCompanyMember]
    throttle_classes: list[Any] = []

    @extend_schema(tags=["auth"], responses={200: SessionStatusOutput})
    def get(self, request: Request) -> Response:
        user = _actor(request)
        return Response(
            SessionStatusOutput(
                {"is_active": True, "last_activity_at": user.last_activity_at or timezone.now()}
            ).data
        )


# --- companies -------------------------------------------------------------------------------


class CompanyListQuery(StrictSerializer):
    search = fields.StringField(required=False, max_length=255)
    status = fields.ChoiceField(choices=CompanyStatus.values, required=False)


def _list_filters(request: Request) -> dict[str, Any]:
    # Only the known filters are read; page/limit belong to the paginator and anything else is
    # ignored, as the original ignores query parameters on these routes.
    raw = {k: request.query_params[k] for k in ("search", "status") if k in request.query_params}
    return validated_query_data(CompanyListQuery, raw)


LIST_PARAMETERS = [
    OpenApiParameter("search", str, description="Name contains (case-insensitive)."),
    OpenApiParameter("status", str, enum=CompanyStatus.values),
]


class _CompanyCollectionApi(APIView):
    company_type: str = ""
    create_input: type[StrictSerializer] = StrictSerializer
    output: type[serializers.Serializer] = serializers.Serializer
    throttle_scope = "register"

    def _registering(self) -> bool:
        return getattr(self.request, "method", None) == "POST"

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Public registration: a stale Bearer header must not turn it into a 401.
        return [] if self._registering() else super().get_authenticators()

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self._registering() else [IsCompanyMember()]

    def get_throttles(self) -> list[Any]:
        return [AuthIPThrottle()] if self._registering() else []

    def list(self, request: Request) -> Response:
        companies = selectors.company_list(
            actor=_actor(request), company_type=self.company_type, **_list_filters(request)
        )
        paginator = PagePagination()
        page = paginator.paginate_queryset(companies, request, self)
        return paginator.get_paginated_response(self.output(page, many=True).data)

    def register(self, request: Request) -> Response:
        data = validated_body(self.create_input, request)
        company = services.company_register(company_type=self.company_type, **data)
        return Response(self.output(selectors.company_reload(company=company)).data, status=201)


class CateringCollectionApi(_CompanyCollectionApi):
    company_type = CompanyType.CATERING
    create_input = CateringCreateInput
    output = CateringOutput

    @extend_schema(
        tags=["caterings"],
        parameters=LIST_PARAMETERS,
        responses={200: CateringOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(
        tags=["caterings"],
        auth=[],
        request=CateringCreateInput,
        responses={201: CateringOutput, **errors(409)},
    )
    def post(self, request: Request) -> Response:
        return self.register(request)


class ClientCollectionApi(_CompanyCollectionApi):
    company_type = CompanyType.CLIENT
    create_input = ClientCreateInput
    output = ClientOutput

    @extend_schema(
        tags=["clients"],
        parameters=LIST_PARAMETERS,
        responses={200: ClientOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(
        tags=["clients"],
        auth=[],
        request=ClientCreateInput,
        responses={201: ClientOutput, **errors(409)},
    )
    def post(self, request: Request) -> Response:
        return self.register(request)


class _CompanyDetailApi(APIView):
    permission_classes = [RolesByMethod]
    roles_by_method = {"PATCH": ADMINS, "DELETE": ADMINS}
    company_type: str = ""
    update_input: type[StrictSerializer] = StrictSerializer
    output: type[serializers.Serializer] = serializers.Serializer

    def retrieve(self, request: Request, company_id: str) -> Response:
        company = selectors.company_get(
            actor=_actor(request),
            company_id=parse_path_uuid(company_id),
            company_type=self.company_type,
        )
        return Response(self.output(company).data)

    def update(self, request: Request, company_id: str) -> Response:
        pk = parse_path_uuid(company_id)
        data = validated_body(self.update_input, request)
        company = services.company_update(
            actor=_actor(request), company_id=pk, company_type=self.company_type, data=data
        )
        return Response(self.output(selectors.company_reload(company=company)).data)

    def destroy(self, request: Request, company_id: str) -> Response:
        company = services.company_soft_delete(
            actor=_actor(request),
            company_id=parse_path_uuid(company_id),
            company_type=self.company_type,
        )
        return Response(self.output(selectors.company_reload(company=company)).data)


class CateringDetailApi(_CompanyDetailApi):
    company_type = CompanyType.CATERING
    update_input = CateringUpdateInput
    output = CateringOutput

    @extend_schema(tags=["caterings"], responses={200: CateringOutput})
    def get(self, request: Request, company_id: str) -> Response:
        return self.retrieve(request, company_id)

    @extend_schema(
        tags=["caterings"],
        request=CateringUpdateInput,
        responses={200: CateringOutput, **errors(409)},
    )
    def patch(self, request: Request, company_id: str) -> Response:
        return self.update(request, company_id)

    @extend_schema(
        tags=["caterings"],
        description="Soft delete: INACTIVE with deletedAt; restorable for 30 days.",
        responses={200: CateringOutput},
    )
    def delete(self, request: Request, company_id: str) -> Response:
        return self.destroy(request, company_id)


class ClientDetailApi(_CompanyDetailApi):
    company_type = CompanyType.CLIENT
    update_input = ClientUpdateInput
    output = ClientOutput

    @extend_schema(tags=["clients"], responses={200: ClientOutput})
    def get(self, request: Request, company_id: str) -> Response:
        return self.retrieve(request, company_id)

    @extend_schema(
        tags=["clients"],
        request=ClientUpdateInput,
        responses={200: ClientOutput, **errors(409)},
    )
    def patch(self, request: Request, company_id: str) -> Response:
        return self.update(request, company_id)

    @extend_schema(
        tags=["clients"],
        description="Soft delete: INACTIVE with deletedAt; restorable for 30 days.",
        responses={200: ClientOutput},
    )
    def delete(self, request: Request, company_id: str) -> Response:
        return self.destroy(request, company_id)


# --- users -----------------------------------------------------------------------------------


class UserCollectionApi(APIView):
    permission_classes = [RolesByMethod]
    roles_by_method = {"POST": ADMINS}

    @extend_schema(tags=["users"], responses={200: UserOutput(many=True)})
    def get(self, request: Request) -> Response:
        paginator = PagePagination()
        page = paginator.paginate_queryset(selectors.user_list(actor=_actor(request)), request)
        return paginator.get_paginated_response(UserOutput(page, many=True).data)

    @extend_schema(
        tags=["users"],
        description="Invites a user of the caller's company; the e-mail link sets the password.",
        request=UserCreateInput,
        responses={201: UserOutput, **errors(409)},
    )
    def post(self, request: Request) -> Response:
        data = validated_body(UserCreateInput, request)
        user = services.user_invite(actor=_actor(request), **data)
        return Response(UserOutput(user).data, status=201)


class UserDetailApi(APIView):
    permission_classes = [RolesByMethod]
    roles_by_method = {"PATCH": ADMINS, "DELETE": ADMINS}

    @extend_schema(tags=["users"], responses={200: UserOutput})
    def get(self, request: Request, user_id: str) -> Response:
        user = selectors.user_get(actor=_actor(request), user_id=parse_path_uuid(user_id))
        return Response(UserOutput(user).data)

    @extend_schema(
        tags=["users"],
        request=UserUpdateInput,
        responses={200: UserOutput, **errors(409)},
    )
    def patch(self, request: Request, user_id: str) -> Response:
        pk = parse_path_uuid(user_id)
        data = validated_body(UserUpdateInput, request)
        user = services.user_update(actor=_actor(request), user_id=pk, data=data)
        return Response(UserOutput(user).data)

    @extend_schema(tags=["users"], responses={200: MessageOutput})
    def delete(self, request: Request, user_id: str) -> Response:
        services.user_delete(actor=_actor(request), user_id=parse_path_uuid(user_id))
        return Response({"message": "User deleted successfully"})


# --- demo seed -------------------------------------------------------------------------------


class SeedApi(PublicApi):
    @extend_schema(
        tags=["seed"],
        auth=[],
        request=None,
        description="Wipes and reloads the demo data. Exists only when DEMO_SEED_ENABLED.",
        responses={201: SeedOutput, **errors(404)},
    )
    def post(self, request: Request) -> Response:
        if not settings.DEMO_SEED_ENABLED:
            return Response(error_body(404, f"Cannot POST {request.path}"), status=404)
        summaries = run_seeders(today=timezone.now().date())
        logins = demo_logins()
        admins = [login for login in logins if login.role == "ADMIN"]
        body = {
            "message": "Database seeded successfully",
            "credentials": {
                "password": DEMO_PASSWORD,
                "catering": [a.email for a in admins if a.company_type == CompanyType.CATERING],
                "clients": [a.email for a in admins if a.company_type == CompanyType.CLIENT],
            },
            "users": [
                {
                    "email": login.email,
                    "role": login.role,
                    "company": login.company,
                    "company_type": login.company_type,
                }
                for login in logins
            ],
            "summary": summaries,
        }
        return Response(SeedOutput(body).data, status=201)
