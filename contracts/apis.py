"""Contract API (reference §3.5 C1, C3-C7; C2 finance-metrics lives in servicedays)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chefops.api.cachedviews import CachedReadView
from chefops.api.fields import parse_path_uuid
from chefops.api.pagination import PagePagination
from chefops.api.permissions import MANAGERS, IsClientCompany, IsCompanyMember, require_role
from chefops.api.schema import errors
from chefops.api.serializers import validated_body, validated_query_data
from companies.models import Company, User
from contracts import selectors, services
from contracts.models import Contract, ContractStatus
from contracts.serializers import ContractCreateInput, ContractListQuery, ContractOutput

CONTRACT_ID_PARAM = OpenApiParameter(
    "contract_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Contract id."
)


def acting_user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # guaranteed by the permission classes
    return user


def acting_company(request: Request) -> Company:
    company = acting_user(request).company
    assert company is not None  # JWTAuthentication admits company users only
    return company


def contract_response(contract: Contract, *, status: int = 200) -> Response:
    return Response(ContractOutput(contract).data, status=status)


class ContractListCreateApi(CachedReadView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        operation_id="contracts_list",
        parameters=[
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=ContractStatus.values,
                description="Only contracts in this status (default: every status).",
            ),
        ],
        responses={200: ContractOutput(many=True)},
    )
    def get(self, request: Request) -> HttpResponse:
        # Like the original, this route has no query DTO: parameters other than these are
        # ignored rather than rejected.
        status = None
        if "status" in request.query_params:
            status = validated_query_data(
                ContractListQuery, {"status": request.query_params["status"]}
            )["status"]
        company = acting_company(request)

        def build() -> Response:
            paginator = PagePagination()
            page = paginator.paginate_rows(
                request,
                lambda offset, limit: selectors.contract_page_rows(
                    company=company, status=status, offset=offset, limit=limit
                ),
                lambda: selectors.contract_count(company=company, status=status),
            )
            return paginator.get_paginated_response(page)

        return self.cached(request, company.pk, build)

    @extend_schema(
        operation_id="contracts_create",
        request=ContractCreateInput,
        # 403: a role below MANAGER, or neither party; 404: an unknown company id in the body.
        responses={201: ContractOutput, **errors(403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        user = acting_user(request)
        # Like a guard in the original: the role is checked before the body is validated.
        require_role(user, MANAGERS)
        data = validated_body(ContractCreateInput, request)
        contract = services.contract_create(
            actor=user,
            catering_company_id=data["catering_company_id"],
            client_company_id=data["client_company_id"],
            start_date=data.get("start_date"),
            end_date=data.get("end_date"),
            price_per_service=data["price_per_service"],
            flexible_quantity=(
                True if data.get("flexible_quantity") is None else data["flexible_quantity"]
            ),
            min_daily_quantity=data["min_daily_quantity"],
            max_daily_quantity=data["max_daily_quantity"],
            notice_period_hours=data["notice_period_hours"],
            service_days=data["service_days"],
        )
        return contract_response(selectors.contract_for_output(contract_id=contract.pk), status=201)


class ContractDetailApi(APIView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        operation_id="contracts_retrieve",
        parameters=[CONTRACT_ID_PARAM],
        responses={200: ContractOutput, **errors(403)},
    )
    def get(self, request: Request, contract_id: str) -> Response:
        contract = selectors.contract_get(
            company=acting_company(request), contract_id=parse_path_uuid(contract_id)
        )
        return contract_response(contract)


class _ContractTransitionApi(APIView):
    """POST /contracts/:id/<action>: CLIENT companies only, checked before the id (as the
    original's guard); then id → exists → caller is the client → role → state (in the service).
    Any body is ignored, as in the original."""

    permission_classes = [IsClientCompany]
    transition: ClassVar[Any]

    def post(self, request: Request, contract_id: str) -> Response:
        contract = type(self).transition(
            contract_id=parse_path_uuid(contract_id), actor=acting_user(request)
        )
        return contract_response(selectors.contract_for_output(contract_id=contract.pk), status=201)


def _transition_schema(action: str) -> Any:
    return extend_schema(
        operation_id=f"contracts_{action}",
        parameters=[CONTRACT_ID_PARAM],
        request=None,
        # 400: the transition is not allowed from the contract's status; 409: resuming while
        # the pair already has an ACTIVE contract.
        responses={201: ContractOutput, **(errors(409) if action == "resume" else {})},
    )


class ContractPauseApi(_ContractTransitionApi):
    transition = staticmethod(services.contract_pause)

    @_transition_schema("pause")
    def post(self, request: Request, contract_id: str) -> Response:
        return super().post(request, contract_id)


class ContractResumeApi(_ContractTransitionApi):
    transition = staticmethod(services.contract_resume)

    @_transition_schema("resume")
    def post(self, request: Request, contract_id: str) -> Response:
        return super().post(request, contract_id)


class ContractTerminateApi(_ContractTransitionApi):
    transition = staticmethod(services.contract_terminate)

    @_transition_schema("terminate")
    def post(self, request: Request, contract_id: str) -> Response:
        return super().post(request, contract_id)
