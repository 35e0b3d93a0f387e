"""Thin HTTP layer of service days, weekly reports and finance metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chefops import readcache
from chefops.api.cachedviews import CachedReadView, utc_date_stamp
from chefops.api.fields import is_uuid, parse_path_uuid
from chefops.api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PagePagination,
    ascii_positive_int,
)
from chefops.api.permissions import IsCompanyMember, require_company_type
from chefops.api.schema import errors
from chefops.api.serializers import validated_body, validated_query
from companies.models import CompanyType, User
from servicedays import selectors, services
from servicedays.serializers import (
    FINANCE_METRICS,
    ConfirmExpectedInput,
    ConfirmServedInput,
    FinanceMetricsSerializer,
    GenerateInput,
    ServiceDayRangeQuery,
    ServiceDaySerializer,
    WeeklyReportQuery,
    WeeklyReportSerializer,
    service_day_data,
    weekly_report_csv,
    weekly_report_data,
)

TAGS = ["service days"]


def _date_param(name: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.DATE,
        required=True,
        description="YYYY-MM-DD, or an ISO 8601 instant (its UTC date counts).",
    )


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # guaranteed by IsCompanyMember
    return user


def _first_page_size(request: Request) -> int | None:
    """The page size when the first page is asked for with valid paging, else None (the
    generic paginator then handles the request and reports invalid values)."""
    page = request.query_params.get("page")
    limit = request.query_params.get("limit")
    if page not in (None, "1"):
        return None
    if limit is None:
        return DEFAULT_LIMIT
    size = ascii_positive_int(limit)
    return size if size is not None and size <= MAX_LIMIT else None


class _ContractReadView(CachedReadView):
    """A read of one contract's service days, cached until they (or the contract) change."""

    def read_cache_scopes(self, company_id: Any) -> list[str] | None:
        contract_id = self.kwargs["contract_id"]
        # A malformed id is answered by the view (its 400) without a lookup.
        return [readcache.contract_scope(uuid.UUID(contract_id))] if is_uuid(contract_id) else None


class ServiceDayListApi(_ContractReadView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        tags=TAGS,
        summary="A contract's service days in [from, to] (inclusive), by date",
        parameters=[
            _date_param("from"),
            _date_param("to"),
        ],
        responses={200: ServiceDaySerializer(many=True), **errors(403)},
    )
    def get(self, request: Request, contract_id: str) -> HttpResponse:
        company = _user(request).company
        assert company is not None
        # A cached entry exists only for a URL that passed validation before: the same URL
        # passes again, so the lookup comes first.
        return self.cached(request, company.pk, lambda: self._build(request, contract_id, company))

    def _build(self, request: Request, contract_id: str, company: Any) -> Response:
        pk = parse_path_uuid(contract_id)
        query = validated_query(ServiceDayRangeQuery, request)
        paginator = PagePagination()
        size = _first_page_size(request)
        if size is not None:
            # Usually the whole range fits in the first page: one query, and no COUNT since
            # a page that is not full is the total.
            rows = selectors.service_days_first_rows(
                contract_id=pk,
                company=company,
                from_date=query["from"],
                to_date=query["to"],
                limit=size + 1,
            )
            if len(rows) <= size:
                paginator.request, paginator.page, paginator.limit = request, 1, size
                paginator.total = len(rows)
                return paginator.get_paginated_response(rows)
        days = selectors.service_days_in_range(
            contract_id=pk, company=company, from_date=query["from"], to_date=query["to"]
        )
        page = paginator.paginate_queryset(days, request, self)
        return paginator.get_paginated_response([service_day_data(day) for day in page])


class ServiceDayGenerateApi(APIView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        tags=TAGS,
        summary="Create the missing days of [fromDate, toDate] (MANAGER or ADMIN of a party)",
        request=GenerateInput,
        responses={201: ServiceDaySerializer(many=True), **errors(403)},
    )
    def post(self, request: Request, contract_id: str) -> Response:
        pk = parse_path_uuid(contract_id)
        data = validated_body(GenerateInput, request)
        created = services.service_days_generate(
            contract_id=pk,
            user=_user(request),
            from_date=data["from_date"],
            to_date=data["to_date"],
        )
        return Response([service_day_data(day) for day in created], status=201)


class ConfirmExpectedApi(APIView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        tags=TAGS,
        summary="The client confirms the expected quantity before the notice deadline",
        request=ConfirmExpectedInput,
        responses={201: ServiceDaySerializer, **errors(403)},
    )
    def post(self, request: Request, service_day_id: str) -> Response:
        user = _user(request)
        require_company_type(user, CompanyType.CLIENT)  # the type guard runs before validation
        pk = parse_path_uuid(service_day_id)
        data = validated_body(ConfirmExpectedInput, request)
        day = services.service_day_confirm_expected(
            service_day_id=pk, user=user, expected_quantity=data["expected_quantity"]
        )
        return Response(service_day_data(day), status=201)


class ConfirmServedApi(APIView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        tags=TAGS,
        summary="The caterer confirms the served quantity on or after the day",
        request=ConfirmServedInput,
        responses={201: ServiceDaySerializer, **errors(403)},
    )
    def post(self, request: Request, service_day_id: str) -> Response:
        user = _user(request)
        require_company_type(user, CompanyType.CATERING)
        pk = parse_path_uuid(service_day_id)
        data = validated_body(ConfirmServedInput, request)
        day = services.service_day_confirm_served(
            service_day_id=pk, user=user, served_quantity=data["served_quantity"]
        )
        return Response(service_day_data(day), status=201)


WEEK_START_PARAM = OpenApiParameter(
    "weekStart",
    OpenApiTypes.DATE,
    required=True,
    description=(
        "First day of the report (YYYY-MM-DD, or an ISO 8601 instant: the week starts at it); "
        "need not be a Monday; on or before 9999-12-25 (UTC)."
    ),
)


class WeeklyReportApi(_ContractReadView):
    permission_classes = [IsCompanyMember]

    @extend_schema(
        tags=["reports"],
        summary="Seven days of a contract from weekStart, with totals and costs",
        parameters=[WEEK_START_PARAM],
        responses={200: WeeklyReportSerializer, **errors(403)},
    )
    def get(self, request: Request, contract_id: str) -> HttpResponse:
        company = _user(request).company
        assert company is not None

        def build() -> Response:  # validation inside: see ServiceDayListApi
            pk = parse_path_uuid(contract_id)
            query = validated_query(WeeklyReportQuery, request)
            report = selectors.weekly_report_for(
                contract_id=pk, company=company, week_start=query["week_start"]
            )
            return Response(weekly_report_data(report))

        return self.cached(request, company.pk, build)


class JsonErrorsNegotiation(BaseContentNegotiation):
    """The CSV view answers errors as JSON whatever ``Accept`` says (never a 406)."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class WeeklyReportCsvApi(APIView):
    permission_classes = [IsCompanyMember]
    content_negotiation_class = JsonErrorsNegotiation

    @extend_schema(
        tags=["reports"],
        summary="The weekly report as a CSV download",
        parameters=[WEEK_START_PARAM],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), **errors(403)},
    )
    def get(self, request: Request, contract_id: str) -> HttpResponse:
        pk = parse_path_uuid(contract_id)
        query = validated_query(WeeklyReportQuery, request)
        report = selectors.weekly_report_for(
            contract_id=pk,
            company=_user(request).company,  # type: ignore[arg-type]
            week_start=query["week_start"],
        )
        response = HttpResponse(weekly_report_csv(report), content_type="text/csv; charset=utf-8")
        # The raw parameter passed the ISO 8601 pattern, so it holds no quote or separator.
        raw = request.query_params["weekStart"]
        response["Content-Disposition"] = f'attachment; filename="weekly-report-{pk}-{raw}.csv"'
        return response


class FinanceMetricsApi(CachedReadView):
    """Any member of either company type (SPEC §2.1): a client reads its spend, a caterer the
    mirror view, its revenue (the original refused caterers with a 403 that its own
    dashboard triggered on every load)."""

    permission_classes = [IsCompanyMember]

    def read_cache_scopes(self, company_id: Any) -> list[str] | None:
        # Every writer of a service day bumps this scope for both parties of its contract.
        return [readcache.service_days_scope(company_id)]

    def read_cache_stamp(self, now: datetime) -> str:
        # The figures depend on today's date (month windows, projection).
        return utc_date_stamp(now)

    @extend_schema(
        tags=["contracts"],
        summary="Budget, KPIs and recent services of the calling company",
        description=(
            "Over every contract of the calling company, whatever its status. A CLIENT reads "
            "its spend; a CATERING company reads the mirror view with the same keys: its "
            "revenue from the contracts it serves (each field says what it means on either "
            "side)."
        ),
        responses={200: FinanceMetricsSerializer},
    )
    def get(self, request: Request) -> HttpResponse:
        company = _user(request).company
        assert company is not None
        now = timezone.now()
        return self.cached(
            request,
            company.pk,
            lambda: Response(
                FINANCE_METRICS.render(selectors.finance_metrics_for(company=company, now=now))
            ),
            now,
        )
