"""Contract routes (no trailing slash). `contracts/finance-metrics` and the service-day and
report routes under `contracts/<id>/` live in servicedays.urls, included before this module."""

from django.urls import path

from contracts import apis

urlpatterns = [
    path("contracts", apis.ContractListCreateApi.as_view(), name="contract-list"),
    path("contracts/<str:contract_id>", apis.ContractDetailApi.as_view(), name="contract-detail"),
    path(
        "contracts/<str:contract_id>/pause", apis.ContractPauseApi.as_view(), name="contract-pause"
    ),
    path(
        "contracts/<str:contract_id>/resume",
        apis.ContractResumeApi.as_view(),
        name="contract-resume",
    ),
    path(
        "contracts/<str:contract_id>/terminate",
        apis.ContractTerminateApi.as_view(),
        name="contract-terminate",
    ),
]
