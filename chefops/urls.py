from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from chefops.api.errors import api_not_found
from chefops.health import HealthView, ReadinessView
from chefops.ops.admin import operations_view
from chefops.ops.metrics import metrics_view
from companies import urls as companies_urls
from contracts import urls as contracts_urls
from servicedays import urls as servicedays_urls
from webhooks import urls as webhooks_urls


class PublicSchemaView(SpectacularAPIView):
    authentication_classes: list[object] = []


class PublicSwaggerView(SpectacularSwaggerView):
    authentication_classes: list[object] = []


# Django tries the patterns in order, each a regex match (a miss costs ~1.5 µs): the API comes
# first, its routes in one list with the data routes the frontend polls ahead of the auth,
# company and webhook routes (/api/contracts was resolved in 46 µs behind them, 5 % of a cached
# read; issue #18). servicedays before contracts: it owns contracts/finance-metrics and
# contracts/<id>/service-days|reports, which must win over contracts/<id>.
api_patterns = [
    *servicedays_urls.urlpatterns,
    *contracts_urls.urlpatterns,
    *companies_urls.urlpatterns,
    *webhooks_urls.urlpatterns,
]

urlpatterns = [
    path("api/", include(api_patterns)),
    path("api/health", HealthView.as_view(), name="health"),
    path("api/health/ready", ReadinessView.as_view(), name="health-ready"),
    path("api/schema", PublicSchemaView.as_view(), name="schema"),
    path("api/docs", PublicSwaggerView.as_view(url_name="schema"), name="docs"),
    # Anything else under /api answers like the original: 404 `Cannot <METHOD> <path>`, for
    # every method (the view is CSRF-exempt) and every path (`[\s\S]`, not `.`: a path with
    # a newline is a path too).
    re_path(r"^api(?:/[\s\S]*)?$", api_not_found),
    path("admin/operations/", admin.site.admin_view(operations_view), name="admin-operations"),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
]

handler400 = "chefops.api.errors.handler400"
handler404 = "chefops.api.errors.handler404"
handler500 = "chefops.api.errors.handler500"
