"""Service-day, report and finance-metrics routes.

Included before contracts.urls, so ``contracts/finance-metrics`` and the nested
``contracts/<id>/...`` paths below win over ``contracts/<id>``.
"""

from django.urls import path

from servicedays import apis

urlpatterns = [
    path(
        "contracts/finance-metrics",
        apis.FinanceMetricsApi.as_view(),
        name="contracts-finance-metrics",
    ),
    path(
        "contracts/<str:contract_id>/service-days",
        apis.ServiceDayListApi.as_view(),
        name="service-days-list",
    ),
    path(
        "contracts/<str:contract_id>/service-days/generate",
        apis.ServiceDayGenerateApi.as_view(),
        name="service-days-generate",
    ),
    path(
        "contracts/<str:contract_id>/reports/weekly",
        apis.WeeklyReportApi.as_view(),
        name="weekly-report",
    ),
    path(
        "contracts/<str:contract_id>/reports/weekly/csv",
        apis.WeeklyReportCsvApi.as_view(),
        name="weekly-report-csv",
    ),
    path(
        "service-days/<str:service_day_id>/confirm-expected",
        apis.ConfirmExpectedApi.as_view(),
        name="service-day-confirm-expected",
    ),
    path(
        "service-days/<str:service_day_id>/confirm-served",
        apis.ConfirmServedApi.as_view(),
        name="service-day-confirm-served",
    ),
]
