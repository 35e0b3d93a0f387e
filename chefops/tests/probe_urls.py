"""A tiny API used only by the tests of the shared API conventions (chefops/api)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.urls import include, path
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chefops.api import fields
from chefops.api.errors import Conflict
from chefops.api.pagination import PagePagination
from chefops.api.serializers import StrictSerializer, validated_body, validated_query


class ProbeInput(StrictSerializer):
    display_name = fields.StringField(not_empty=True)
    daily_capacity = fields.IntegerField(min_value=1)
    price_per_service = fields.MoneyField(required=False)
    office_days = fields.IntArrayField(
        min_size=1, min_value=1, max_value=7, unique=True, required=False
    )
    is_open = fields.BooleanField(required=False)
    start_date = fields.IsoDateField(required=False)


class ProbeQuery(StrictSerializer):
    week_start = fields.IsoDateField()


class EchoView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        data = validated_body(ProbeInput, request)
        data["nested_value"] = {"inner_key": 1}
        return Response(data, status=201)

    def get(self, request: Request) -> Response:
        return Response(validated_query(ProbeQuery, request))


class ItemsView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        paginator = PagePagination()
        page = paginator.paginate_queryset(list(range(1, 251)), request, self)
        return paginator.get_paginated_response([{"item_number": n} for n in page])


class FailView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    def get(self, request: Request, kind: str) -> Response:
        if kind == "forbidden":
            raise PermissionDenied("Only an ADMIN may do this")
        if kind == "conflict":
            raise Conflict("Already exists")
        if kind == "throttled":
            raise Throttled(wait=12.2)
        raise RuntimeError("boom: secret internals")


class PrivateView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


probe_patterns = [
    path("probe/echo", EchoView.as_view()),
    path("probe/items", ItemsView.as_view()),
    path("probe/fail/<str:kind>", FailView.as_view()),
    path("probe/private", PrivateView.as_view()),
]

urlpatterns = [path("api/", include(probe_patterns)), path("", include("chefops.urls"))]
