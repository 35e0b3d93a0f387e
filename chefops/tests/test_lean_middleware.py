"""The admin's middleware (sessions, CSRF cookie, authentication, messages, clickjacking) runs
for the admin and pages only, not for /api and /metrics (issue #18); the CSRF check still
guards every view that is not exempt."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chefops.checks import browser_protections
from chefops.middleware import serves_admin_middleware

ADMIN_ONLY_HEADERS = ("Set-Cookie", "X-Frame-Options")


def test_which_paths_run_the_admin_middleware() -> None:
    assert not serves_admin_middleware("/api")
    assert not serves_admin_middleware("/api/health")
    assert not serves_admin_middleware("/api/contracts/1/service-days")
    assert not serves_admin_middleware("/metrics")
    assert serves_admin_middleware("/admin/")
    assert serves_admin_middleware("/admin/login/")
    assert serves_admin_middleware("/apiary")  # not the API
    assert serves_admin_middleware("/metrics/")  # not the metrics route
    assert serves_admin_middleware("/")


@pytest.mark.django_db
def test_the_admin_still_refuses_a_post_without_a_csrf_token() -> None:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/admin/login/")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert "csrftoken" in page.cookies
    refused = browser.post("/admin/login/", {"username": "a@example.com", "password": "x"})
    assert refused.status_code == 403
    assert b"CSRF" in refused.content
    # with the token from the page's cookie, the same form is processed (and fails login)
    token = page.cookies["csrftoken"].value
    answered = browser.post(
        "/admin/login/",
        {"username": "a@example.com", "password": "x", "csrfmiddlewaretoken": token},
    )
    assert answered.status_code == 200
    assert b"Please enter the correct" in answered.content


@pytest.mark.django_db
def test_the_csrf_check_still_guards_a_view_that_is_not_exempt_outside_the_admin() -> None:
    # /metrics is a plain Django view: a POST without a token is refused as before
    assert Client(enforce_csrf_checks=True).post("/metrics").status_code == 403
    assert Client().post("/metrics").status_code == 405


@pytest.mark.django_db
def test_api_and_metrics_responses_carry_no_cookie_or_page_headers(
    cast: Any, settings: Any
) -> None:
    settings.METRICS_TOKEN = ""
    browser = Client(enforce_csrf_checks=True)
    # a browser that also holds the admin's cookies
    browser.cookies["sessionid"] = "abcdefghijklmnopqrstuvwxyz012345"
    browser.cookies["csrftoken"] = "A" * 32
    api = cast.api(cast.client.manager)
    api.cookies = browser.cookies
    for response in (
        browser.get("/api/health"),
        browser.get("/api/health/"),
        browser.get("/metrics"),
        browser.get("/api/nothing-here"),
        api.get("/api/contracts"),
        api.get("/api/auth/session-status"),
    ):
        assert response.status_code in (200, 404), response.content
        for header in ADMIN_ONLY_HEADERS:
            assert header not in response, (response.wsgi_request.path, header)
        assert "cookie" not in response.get("Vary", "").lower()
        assert "X-Request-ID" in response and "X-Content-Type-Options" in response
        assert not hasattr(response.wsgi_request, "session")
        assert not hasattr(response.wsgi_request, "_messages")


@pytest.mark.django_db
def test_an_api_write_with_a_session_cookie_needs_no_csrf_token(cast: Any) -> None:
    """The API authenticates with bearer tokens: a POST is not refused for a missing CSRF
    token, as before (DRF's views are csrf_exempt): the view answers it."""
    api = cast.api(cast.client.manager)
    api.handler.enforce_csrf_checks = True
    api.cookies["sessionid"] = "abcdefghijklmnopqrstuvwxyz012345"
    response = api.post("/api/auth/logout", {}, format="json")
    assert response.json()["message"] == ["refreshToken must be a string"]
    assert "Set-Cookie" not in response


def test_the_admin_system_checks_find_its_middleware() -> None:
    from django.core import checks

    problems = [m for m in checks.run_checks() if (m.id or "").startswith("admin.")]
    assert problems == []


def test_the_deploy_checks_see_the_csrf_and_clickjacking_subclasses(settings: Any) -> None:
    assert browser_protections() == []
    settings.MIDDLEWARE = [
        path
        for path in settings.MIDDLEWARE
        if not path.endswith(("CsrfViewMiddleware", "XFrameOptionsMiddleware"))
    ]
    assert sorted(str(message.id) for message in browser_protections()) == [
        "chefops.W002",
        "chefops.W003",
    ]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]
    assert [message.id for message in browser_protections()] == ["chefops.W002"]
