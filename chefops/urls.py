from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from chefops.api.errors import api_not_found
from chefops.health import HealthView, ReadinessView
from chefops.ops.admin import operations_view
from chefops.ops.metrics import metrics_view


class PublicSchemaView(SpectacularAPIView):
    authentication_classes: list[object] = []


class PublicSwaggerView(SpectacularSwaggerView):
    authentication_classes: list[object] = []


urlpatterns = [
    path("admin/operations/", admin.site.admin_view(operations_view), name="admin-operations"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/health", HealthView.as_view(), name="health"),
    path("api/health/ready", ReadinessView.as_view(), name="health-ready"),
    path("api/schema", PublicSchemaView.as_view(), name="schema"),
    path("api/docs", PublicSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include("companies.urls")),
    # servicedays before contracts: it owns contracts/finance-metrics and
    # contracts/<id>/service-days|reports, which must win over contracts/<id>.
    path("api/", include("servicedays.urls")),
    path("api/", include("contracts.urls")),
    path("api/", include("webhooks.urls")),
    # Anything else under /api answers like the original: 404 `Cannot <METHOD> <path>`, for
    # every method (the view is CSRF-exempt) and every path (`[\s\S]`, not `.`: a path with
    # a newline is a path too).
    re_path(r"^api(?:/[\s\S]*)?$", api_not_found),
]

handler400 = "chefops.api.errors.handler400"
handler404 = "chefops.api.errors.handler404"
handler500 = "chefops.api.errors.handler500"
