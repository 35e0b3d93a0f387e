"""Read-cache hits answered in front of Django (chefops/readfast.py) answer what Django answers:
status, headers and body, for every cached route, both company types, CORS, the proxy's HTTPS
and request ids; everything else (misses, refusals, other routes and methods) reaches Django.

Each comparison first reads through Django until the answer is a hit (the principal cached,
the session known alive, the minute's activity recorded), then asks both paths. The clock is
stopped: the activity minute and the metrics' date stamp cannot change half-way.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import override_settings
from prometheus_client import REGISTRY

from chefops import readfast
from chefops.ops.metrics import HTTP_REQUESTS
from chefops.testing.cast import session_access_token
from chefops.tests.test_health_fast_path import HEX32, call, environ
from chefops.tests.test_unguarded_writes import NOW, caches_on  # noqa: F401 (autouse)
from companies.models import CompanyStatus, User
from contracts.models import Contract
from servicedays.models import ServiceDay
from servicedays.tests.helpers import make_contract, make_day

pytestmark = pytest.mark.django_db

Answer = tuple[str, dict[str, str], bytes]


class Django:
    """Django's WSGI handler, counting the requests that reach it. Like Django's test client,
    the request signals leave the test case's connection alone."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.calls = 0

    def __call__(self, env: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            return list(self.handler(env, start_response))
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)


def request(path: str, token: str, **extra: str) -> dict[str, Any]:
    path, _, query = path.partition("?")
    return environ(
        "GET",
        path,
        QUERY_STRING=query,
        HTTP_HOST="testserver",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **extra,
    )


def warm(env: dict[str, Any]) -> None:
    """Reads through Django until its answer comes from the caches (three reads at most: the
    entry, then the principal refreshed after the minute's activity update)."""
    for _ in range(3):
        call(Django(), env)


def both(env: dict[str, Any]) -> tuple[Answer, Answer, int]:
    """The fast path's answer, how many requests it handed to Django, then Django's answer
    (the same read again: a hit where the first stored it)."""
    behind = Django()
    fast = call(readfast.read_cache_fast_path(behind), env)
    return fast, call(Django(), env), behind.calls


def assert_same(env: dict[str, Any], *, served: bool = True) -> Answer:
    (f_status, f_headers, f_body), (d_status, d_headers, d_body), handed = both(env)
    assert handed == (0 if served else 1)
    assert f_status == d_status
    assert f_body == d_body
    d_id, f_id = d_headers.pop("x-request-id"), f_headers.pop("x-request-id")
    incoming = env.get("HTTP_X_REQUEST_ID")
    if incoming is not None and HEX32.match(d_id) is None:
        assert d_id == f_id == incoming
    else:
        assert HEX32.match(d_id) and HEX32.match(f_id)
    assert f_headers == d_headers
    return f_status, f_headers, f_body


@pytest.fixture
def contract(cast: Any) -> Contract:
    contract = make_contract(cast)
    for offset in range(26):  # its Mondays, Wednesdays and Fridays from Jan 5 to Jan 30
        day = date(2026, 1, 5) + timedelta(days=offset)
        if day.isoweekday() in (1, 3, 5):
            make_day(contract, day)
    return contract


def routes(contract: Contract) -> list[str]:
    return [
        "/api/contracts",
        "/api/contracts?status=ACTIVE",
        "/api/contracts?page=2&limit=1",
        f"/api/contracts/{contract.pk}/service-days?from=2026-01-05&to=2026-01-30",
        f"/api/contracts/{contract.pk}/service-days?from=2026-01-05&to=2026-01-30&limit=5&page=2",
        f"/api/contracts/{contract.pk}/reports/weekly?weekStart=2026-01-19",
        "/api/contracts/finance-metrics",
    ]


@pytest.mark.parametrize("party", ["catering", "client"])
def test_every_cached_route_answers_as_django_does(
    cast: Any, contract: Contract, party: str
) -> None:
    # a second contract of each party: the list's second page
    make_contract(cast, client_company=cast.other_client.company)
    make_contract(cast, catering_company=cast.other_catering.company)
    token = session_access_token(getattr(cast, party).employee)
    for path in routes(contract):
        env = request(path, token)
        warm(env)
        status, headers, body = assert_same(env)
        assert status == "200 OK", (path, body)
        assert headers["content-type"] == "application/json; charset=utf-8"
        assert int(headers["content-length"]) == len(body)
    paged = request("/api/contracts?page=2&limit=1", token)
    _, headers, _ = assert_same(paged)
    assert headers["x-total-count"] == "2" and 'rel="prev"' in headers["link"]


@pytest.mark.parametrize(
    "extra",
    [
        {"HTTP_ORIGIN": "http://localhost:3000"},
        {"HTTP_ORIGIN": "http://evil.example"},
        {"HTTP_ORIGIN": "null"},
        {"HTTP_X_REQUEST_ID": "dash-1.a_B"},
        {"HTTP_X_REQUEST_ID": "no spaces allowed"},
        {"HTTP_ACCEPT": "application/json"},
        {"HTTP_ACCEPT": "*/*"},
    ],
    ids=["allowed-origin", "other-origin", "null-origin", "kept-id", "refused-id", "json", "any"],
)
def test_browser_and_client_headers(cast: Any, contract: Contract, extra: dict[str, str]) -> None:
    token = session_access_token(cast.client.manager)
    env = request(f"/api/contracts/{contract.pk}/reports/weekly?weekStart=2026-01-19", token)
    env.update(extra)
    warm(env)
    _, headers, _ = assert_same(env)
    allowed = extra.get("HTTP_ORIGIN") == "http://localhost:3000"
    assert (headers.get("access-control-allow-origin") == "http://localhost:3000") is allowed


@pytest.mark.parametrize("proto", ["https", "http"])
@override_settings(
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    SECURE_HSTS_SECONDS=31536000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_REFERRER_POLICY=["same-origin", "strict-origin"],
    SECURE_CROSS_ORIGIN_OPENER_POLICY="same-origin",
)
def test_behind_the_platforms_proxy(cast: Any, contract: Contract, proto: str) -> None:
    """The absolute URLs of the Link header and the key come from the proxy's scheme and host;
    HSTS on HTTPS only."""
    token = session_access_token(cast.catering.employee)
    env = request(
        "/api/contracts?page=1&limit=1",
        token,
        HTTP_X_FORWARDED_PROTO=proto,
        HTTP_ORIGIN="http://localhost:3001",
    )
    make_contract(cast, client_company=cast.other_client.company)
    warm(env)
    _, headers, _ = assert_same(env)
    assert ("strict-transport-security" in headers) is (proto == "https")
    assert headers["link"].startswith(f"<{proto}://testserver/api/contracts?")


@override_settings(SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=None)
def test_a_redirect_to_https_is_djangos(cast: Any, contract: Contract) -> None:
    env = request("/api/contracts", session_access_token(cast.client.employee))
    warm(env)
    status, _, _ = assert_same(env, served=False)
    assert status.startswith("301")


def test_a_hit_is_counted_as_django_counts_it(cast: Any, contract: Contract) -> None:
    env = request(f"/api/contracts/{contract.pk}/service-days?from=2026-01-05&to=2026-01-30", "")
    env["HTTP_AUTHORIZATION"] = f"Bearer {session_access_token(cast.client.employee)}"
    warm(env)

    def requests() -> float:
        return HTTP_REQUESTS.labels(
            "GET", "api/contracts/<str:contract_id>/service-days", "2xx"
        )._value.get()

    def hits() -> float:
        value = REGISTRY.get_sample_value("chefops_read_cache_lookups_total", {"result": "hit"})
        return value or 0.0

    before, hits_before = requests(), hits()
    assert_same(env)
    assert requests() == before + 2
    assert hits() == hits_before + 2


def tenant_read(cast: Any, contract: Contract) -> dict[str, Any]:
    env = request(
        f"/api/contracts/{contract.pk}/service-days?from=2026-01-05&to=2026-01-30",
        session_access_token(cast.client.employee),
    )
    warm(env)
    assert_same(env)  # a hit until the change below
    return env


def test_a_write_is_seen_at_once(cast: Any, contract: Contract) -> None:
    env = tenant_read(cast, contract)
    ServiceDay.objects.filter(contract=contract, service_date=date(2026, 1, 23)).update(
        expected_quantity=42
    )
    _, _, body = assert_same(env, served=False)
    day = next(d for d in json.loads(body) if d["serviceDate"] == "2026-01-23")
    assert day["expectedQuantity"] == 42
    assert_same(env)  # stored again: a hit


@pytest.mark.parametrize("change", ["logout", "deactivate", "deactivate-company", "password-reset"])
def test_a_refused_principal_is_refused_at_once(cast: Any, contract: Contract, change: str) -> None:
    env = tenant_read(cast, contract)
    user = cast.client.employee
    if change == "logout":
        user.auth_sessions.all().delete()
    elif change == "deactivate":
        User.objects.filter(pk=user.pk).update(is_active=False)
    elif change == "deactivate-company":
        user.company.status = CompanyStatus.INACTIVE
        user.company.save()
    else:
        User.objects.filter(pk=user.pk).update(tokens_valid_after=NOW + timedelta(seconds=1))
    for _ in range(2):  # the second time, the refused principal is in the cache
        status, _, body = assert_same(env, served=False)
        assert status.startswith("401"), body


def test_another_tenants_contract_is_not_served(cast: Any, contract: Contract) -> None:
    path = f"/api/contracts/{contract.pk}/service-days?from=2026-01-05&to=2026-01-30"
    tenant_read(cast, contract)
    env = request(path, session_access_token(cast.other_client.employee))
    warm(env)
    status, _, _ = assert_same(env, served=False)
    assert status.startswith("404") or status.startswith("403")


def test_a_new_minute_records_activity_through_django(cast: Any, contract: Contract) -> None:
    env = tenant_read(cast, contract)
    user = cast.client.employee
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        assert_same(env, served=False)  # Django's path records the new minute
        user.refresh_from_db()
        assert user.last_activity_at == NOW + timedelta(minutes=1)
        warm(env)
        assert_same(env)


def test_the_metrics_of_a_new_day_are_computed_again(cast: Any, contract: Contract) -> None:
    env = request("/api/contracts/finance-metrics", session_access_token(cast.client.admin))
    warm(env)
    assert_same(env)
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        env = request("/api/contracts/finance-metrics", session_access_token(cast.client.admin))
        status, _, _ = assert_same(env, served=False)  # yesterday's figures are not served
        assert status == "200 OK"
        assert_same(env)


@pytest.mark.parametrize(
    "change",
    [
        {"REQUEST_METHOD": "HEAD"},
        {"REQUEST_METHOD": "OPTIONS", "HTTP_ORIGIN": "http://localhost:3000"},
        {"PATH_INFO": "/api/contracts/"},
        {"QUERY_STRING": "status=ACTIVE%00"},
        {"QUERY_STRING": "status=" + quote("\udc80", errors="surrogatepass")},
        {"HTTP_HOST": "evil.example"},
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_ACCEPT": "text/csv"},
        {"HTTP_AUTHORIZATION": "Bearer not.a.token"},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
        {"CONTENT_LENGTH": "2"},
        {"PATH_INFO": "/api/caterings"},
        {"PATH_INFO": "/api/nope"},
        {"PATH_INFO": "/api/contracts/\xc4\x80"},  # U+0100 in UTF-8, as WSGI hands it over
        {"PATH_INFO": "/api/contracts/\xc4\x80/service-days"},
    ],
    ids=[
        "head",
        "preflight",
        "slash",
        "nul",
        "surrogate",
        "host",
        "html",
        "csv",
        "bad-token",
        "basic",
        "body",
        "other-route",
        "unknown",
        "non-ascii",
        "non-ascii-cached-route",
    ],
)
def test_everything_else_reaches_django(
    cast: Any, contract: Contract, change: dict[str, str]
) -> None:
    env = request("/api/contracts?status=ACTIVE", session_access_token(cast.catering.admin))
    warm(env)
    env.update(change)
    assert_same(env, served=False)


def test_an_expired_token_reaches_django(cast: Any, contract: Contract) -> None:
    env = tenant_read(cast, contract)
    with time_machine.travel(NOW + timedelta(days=2), tick=False):
        status, _, _ = assert_same(env, served=False)
    assert status.startswith("401")


def test_off_without_the_read_cache_or_with_other_middleware(
    cast: Any, contract: Contract, settings: Any
) -> None:
    env = tenant_read(cast, contract)
    settings.READ_CACHE_SECONDS = 0
    assert_same(env, served=False)
    settings.READ_CACHE_SECONDS = 300
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    django = Django()
    assert readfast.read_cache_fast_path(django) is django
    settings.MIDDLEWARE = list(readfast.ASSUMED_MIDDLEWARE)
    settings.STATIC_URL = "/api/static/"
    assert readfast.read_cache_fast_path(django) is django


def test_the_assumed_middleware_is_the_configured_one(settings: Any) -> None:
    """A change of MIDDLEWARE turns the fast path off until readfast.py reflects it."""
    assert list(settings.MIDDLEWARE) == list(readfast.ASSUMED_MIDDLEWARE)


def test_a_cache_outage_sends_requests_to_django_for_a_while(
    cast: Any, contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing cache is asked by Django's path only (which falls back to the database), not
    by this layer first, until OUTAGE_BACKOFF_SECONDS have passed on its clock."""
    from django_redis.exceptions import ConnectionInterrupted

    from companies import principals

    env = tenant_read(cast, contract)
    now = [100.0]
    monkeypatch.setattr(readfast, "cache_outage", readfast.CacheOutage(clock=lambda: now[0]))
    asked: list[int] = []
    working = principals.cached_principal

    def failing(*args: Any) -> Any:
        asked.append(1)
        raise ConnectionInterrupted(connection=None)

    monkeypatch.setattr(principals, "cached_principal", failing)
    assert_same(env, served=False)
    assert len(asked) == 1
    now[0] += readfast.OUTAGE_BACKOFF_SECONDS - 0.5
    assert_same(env, served=False)
    assert len(asked) == 1, "asked the failing cache again within the backoff"
    monkeypatch.setattr(principals, "cached_principal", working)
    now[0] += 1.0
    assert_same(env)  # back in the path
