"""Hostile input (issue #13, items 5-11): every case answers a 4xx in the error shape, never a
500 or an HTML page, and writes nothing.

The cases run against the real database of the run: on PostgreSQL a NUL character in a text
value is what breaks (the server refuses it), on SQLite it would be stored silently; both must
refuse it at the API layer. Each test checks the rows it could have changed afterwards.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from chefops.api.pagination import ascii_positive_int
from chefops.api.parsers import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    CamelCaseJSONParser,
    PayloadTooLarge,
    nesting_exceeds,
)
from chefops.testing.cast import Cast, session_access_token
from chefops.testing.http import no_server_errors
from companies.models import Company, User
from contracts.models import Contract
from outbox.models import OutboxEvent
from servicedays import jobs
from servicedays.models import ServiceDay
from servicedays.tests.helpers import make_contract, make_day

pytestmark = pytest.mark.django_db

INT4_MAX = 2_147_483_647
HUGE_INTEGERS = [2**31, 2**63, 10**19]
LIST_ENDPOINTS = ["/api/caterings", "/api/clients", "/api/users", "/api/contracts"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_server_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever a test asserts, no request of this module may answer a 5xx."""
    with no_server_errors(monkeypatch):
        yield


def send(
    client: APIClient,
    method: str,
    path: str,
    body: str | bytes,
    content_type: str = "application/json",
) -> Any:
    """A raw body: the JSON text is exactly what a hostile client would put on the wire."""
    data: Any = body  # the test client sends bytes as they are; its stubs only say str
    return client.generic(method, path, data, content_type=content_type)


def bad_request(response: Any, messages: list[str] | None = None) -> list[str]:
    """A 400 in the error shape; returns its messages (an array for validation errors)."""
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "Bad Request" and body["statusCode"] == 400, body
    assert set(body) == {"message", "error", "statusCode"}
    if messages is not None:
        assert body["message"] == messages
    return body["message"]


def snapshot(model: type[Any], pk: Any) -> dict[str, Any]:
    return dict(model.objects.filter(pk=pk).values().get())


def counts() -> tuple[int, int, int, int, int]:
    return (
        Company.objects.count(),
        User.objects.count(),
        Contract.objects.count(),
        ServiceDay.objects.count(),
        OutboxEvent.objects.count(),
    )


# --- 5. NUL characters ---------------------------------------------------------------------


def test_nul_in_a_text_field_is_400_and_the_row_is_unchanged(cast: Cast) -> None:
    client_id = cast.client.company.pk
    catering_id = cast.catering.company.pk
    user_id = cast.client.employee.pk
    before = (snapshot(Company, client_id), snapshot(Company, catering_id), snapshot(User, user_id))
    written = counts()

    res = send(
        cast.api(cast.client.admin), "PATCH", f"/api/clients/{client_id}", '{"name":"a\\u0000b"}'
    )
    bad_request(res, ["name must not contain NUL characters"])
    res = send(
        cast.api(cast.catering.admin),
        "PATCH",
        f"/api/caterings/{catering_id}",
        '{"taxId":"30-1\\u0000"}',
    )
    bad_request(res, ["taxId must not contain NUL characters"])
    res = send(cast.api(cast.client.admin), "PATCH", f"/api/users/{user_id}", '{"name":"\\u0000"}')
    bad_request(res, ["name must not contain NUL characters"])
    res = send(
        cast.api(cast.client.admin),
        "POST",
        "/api/users",
        '{"email":"new@example.com","name":"Ne\\u0000w","role":"EMPLOYEE"}',
    )
    bad_request(res, ["name must not contain NUL characters"])
    for field in ("name", "taxId"):
        body = {
            "name": "Nuevo",
            "email": "nuevo@example.com",
            "password": "kitchen-rocket-91",
            "taxId": "30-1",
            "dailyCapacity": 10,
        }
        body[field] = "x\x00y"
        res = send(APIClient(), "POST", "/api/caterings", json.dumps(body))
        bad_request(res, [f"{field} must not contain NUL characters"])

    assert (
        snapshot(Company, client_id),
        snapshot(Company, catering_id),
        snapshot(User, user_id),
    ) == before
    assert counts() == written


def test_nul_anywhere_in_a_body_is_refused_by_name(cast: Cast) -> None:
    """Keys and nested values too: the parser refuses them before any field is looked at."""
    api = cast.api(cast.client.admin)
    path = f"/api/clients/{cast.client.company.pk}"
    before = snapshot(Company, cast.client.company.pk)
    res = send(api, "PATCH", path, '{"na\\u0000me":"x"}')
    bad_request(res, ["property na\\u0000me must not contain NUL characters"])
    res = send(api, "PATCH", path, '{"officeDays":[1,"\\u0000"],"extra":{"deep":"\\u0000"}}')
    bad_request(
        res,
        [
            "officeDays[1] must not contain NUL characters",
            "extra.deep must not contain NUL characters",
        ],
    )
    assert snapshot(Company, cast.client.company.pk) == before


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("search=%00", "search must not contain NUL characters"),
        ("search=Tech%00Corp", "search must not contain NUL characters"),
        ("status=%00", "status must not contain NUL characters"),
        ("page=1%00", "page must not contain NUL characters"),
        ("x%00=1", "query parameter names must not contain NUL characters"),
    ],
)
def test_nul_in_a_query_parameter_is_400(cast: Cast, query: str, message: str) -> None:
    bad_request(cast.api(cast.catering.admin).get(f"/api/clients?{query}"), [message])


def test_nul_in_the_query_of_every_kind_of_read(cast: Cast) -> None:
    contract = make_contract(cast)
    api = cast.api(cast.client.employee)
    for url in (
        "/api/contracts?status=ACTIVE%00",
        f"/api/contracts/{contract.pk}/service-days?from=2026-01-01%00&to=2026-01-31",
        f"/api/contracts/{contract.pk}/reports/weekly?weekStart=2026-01-05%00",
        f"/api/contracts/{contract.pk}/reports/weekly/csv?weekStart=%00",
        "/api/users?limit=%00",
    ):
        messages = bad_request(api.get(url))
        assert len(messages) == 1 and "must not contain NUL characters" in messages[0], url


def test_nul_in_the_path_is_400(cast: Cast) -> None:
    api = cast.api(cast.client.admin)
    for path in ("/api/clients/%00", "/api/contracts/a%00b/service-days", "/api/nope%00"):
        bad_request(api.get(path), ["path must not contain NUL characters"])
    before = snapshot(Company, cast.client.company.pk)
    res = send(api, "PATCH", f"/api/clients/{cast.client.company.pk}%00", '{"name":"x"}')
    bad_request(res, ["path must not contain NUL characters"])
    assert snapshot(Company, cast.client.company.pk) == before


# --- 6. Lone surrogates --------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["\\udc00", "\\ud800", "\\ud83d"])
def test_lone_surrogate_in_a_body_is_400(cast: Cast, escape: str) -> None:
    before = snapshot(Company, cast.client.company.pk)
    written = counts()
    res = send(
        cast.api(cast.client.admin),
        "PATCH",
        f"/api/clients/{cast.client.company.pk}",
        '{"name":"x' + escape + 'y"}',
    )
    bad_request(res, ["name must not contain unpaired UTF-16 surrogates"])
    res = send(
        cast.api(cast.client.admin),
        "POST",
        "/api/users",
        '{"email":"s@example.com","name":"' + escape + '","role":"EMPLOYEE"}',
    )
    bad_request(res, ["name must not contain unpaired UTF-16 surrogates"])
    res = send(cast.api(cast.client.admin), "POST", "/api/users", '{"' + escape + '":1}')
    bad_request(res, [f"property {escape} must not contain unpaired UTF-16 surrogates"])
    assert snapshot(Company, cast.client.company.pk) == before
    assert counts() == written


def test_a_surrogate_pair_is_one_character_and_is_stored(cast: Cast) -> None:
    res = send(
        cast.api(cast.client.admin),
        "PATCH",
        f"/api/clients/{cast.client.company.pk}",
        '{"name":"Chef \\ud83d\\ude00"}',
    )
    assert res.status_code == 200, res.content
    assert Company.objects.get(pk=cast.client.company.pk).name == "Chef \U0001f600"


@pytest.mark.parametrize(
    "query", ["search=x%ED%B3%80", "search=%ED%A0%80", "search=%FF", "status=%C3"]
)
def test_invalid_utf8_or_encoded_surrogate_in_a_query_is_400(cast: Cast, query: str) -> None:
    name = query.split("=")[0]
    res = cast.api(cast.catering.admin).get(f"/api/clients?{query}")
    bad_request(res, [f"{name} must be valid UTF-8 text"])


# --- 7. Deep nesting -----------------------------------------------------------------------


def test_deeply_nested_login_body_is_400() -> None:
    res = send(APIClient(), "POST", "/api/auth/login", "[" * 100_000)
    bad_request(res, [f"Request body is nested deeper than {MAX_JSON_DEPTH} levels"])
    res = send(APIClient(), "POST", "/api/auth/login", '{"email":' + "{" * 100_000)
    bad_request(res, [f"Request body is nested deeper than {MAX_JSON_DEPTH} levels"])


def test_deeply_nested_patch_body_is_400_and_the_row_is_unchanged(cast: Cast) -> None:
    before = snapshot(Company, cast.client.company.pk)
    nested = '{"a":' * 900 + "1" + "}" * 900
    res = send(
        cast.api(cast.client.admin),
        "PATCH",
        f"/api/clients/{cast.client.company.pk}",
        '{"name":"Deep","officeDays":' + nested + "}",
    )
    bad_request(res, [f"Request body is nested deeper than {MAX_JSON_DEPTH} levels"])
    assert snapshot(Company, cast.client.company.pk) == before


def test_nesting_up_to_the_limit_is_parsed_and_brackets_in_strings_do_not_count(
    cast: Cast,
) -> None:
    api = cast.api(cast.client.admin)
    path = f"/api/clients/{cast.client.company.pk}"
    # The object itself is level 1: MAX_JSON_DEPTH - 1 more levels are still accepted.
    inner = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    res = send(api, "PATCH", path, '{"officeDays":' + inner + "}")
    bad_request(res)
    assert "nested" not in str(res.json()["message"])
    res = send(api, "PATCH", path, json.dumps({"name": "[[[{{{" * 30 + '\\"[' * 10}))
    assert res.status_code == 200, res.content
    assert Company.objects.get(pk=cast.client.company.pk).name.startswith("[[[{{{")


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        ("[" * 3, False),
        ("[" * 4, True),
        ('[[["[[[[[["]]]', False),  # brackets inside a string do not nest
        ('[[["\\"[[[[[[["]]]', False),  # an escaped quote does not end the string
        ('[[["\\\\"[["]]]', True),  # an escaped backslash does: the string ends there
        ('{"a":{"b":{"c":{}}}}', True),
        ("[]" * 10_000, False),
    ],
)
def test_the_nesting_scan(text: str, too_deep: bool) -> None:
    assert nesting_exceeds(text, 3) is too_deep


def test_a_body_without_a_length_is_cut_at_the_limit() -> None:
    """A chunked body has no Content-Length for the request guard: the parser itself reads
    one byte more than the limit, never the whole stream."""
    stream = io.BytesIO(b"[" + b" " * MAX_BODY_BYTES * 4 + b"]")
    with pytest.raises(PayloadTooLarge):
        CamelCaseJSONParser().parse(stream)
    assert stream.tell() == MAX_BODY_BYTES + 1


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", 1), ("0500", 500), ("2147483647", INT4_MAX), ("0" * 50 + "7", 7)],
)
def test_ascii_positive_int_accepts(raw: str, value: int) -> None:
    assert ascii_positive_int(raw) == value


@pytest.mark.parametrize(
    "raw", ["", "0", "000", "-1", "+1", " 1", "1 ", "1_0", "\uff11", "\u00b2", "\u0663"]
)
def test_ascii_positive_int_refuses(raw: str) -> None:
    assert ascii_positive_int(raw) is None


def test_ascii_positive_int_does_not_convert_thousands_of_digits() -> None:
    assert ascii_positive_int("9" * 100_000) == INT4_MAX + 1


# --- 8. Integers beyond the column ---------------------------------------------------------


@pytest.mark.parametrize("quantity", HUGE_INTEGERS)
def test_quantities_beyond_int4_on_confirmations_are_400(cast: Cast, quantity: int) -> None:
    contract = make_contract(cast, max_daily_quantity=INT4_MAX)
    day = make_day(contract, date(2026, 1, 25))
    before = snapshot(ServiceDay, day.pk)
    written = counts()
    with time_machine.travel(datetime(2026, 1, 20, tzinfo=UTC), tick=False):
        res = send(
            cast.api(cast.client.employee),
            "POST",
            f"/api/service-days/{day.pk}/confirm-expected",
            json.dumps({"expectedQuantity": quantity}),
        )
    bad_request(res, [f"expectedQuantity must not be greater than {INT4_MAX}"])
    with time_machine.travel(datetime(2026, 1, 26, tzinfo=UTC), tick=False):
        res = send(
            cast.api(cast.catering.employee),
            "POST",
            f"/api/service-days/{day.pk}/confirm-served",
            json.dumps({"servedQuantity": quantity}),
        )
    bad_request(res, [f"servedQuantity must not be greater than {INT4_MAX}"])
    assert snapshot(ServiceDay, day.pk) == before
    assert counts() == written


def test_the_largest_int4_is_accepted(cast: Cast) -> None:
    day = make_day(make_contract(cast), date(2026, 1, 25))
    with time_machine.travel(datetime(2026, 1, 26, tzinfo=UTC), tick=False):
        res = send(
            cast.api(cast.catering.employee),
            "POST",
            f"/api/service-days/{day.pk}/confirm-served",
            json.dumps({"servedQuantity": INT4_MAX}),
        )
    assert res.status_code == 201, res.content
    assert ServiceDay.objects.get(pk=day.pk).served_quantity == INT4_MAX


@pytest.mark.parametrize("value", HUGE_INTEGERS)
@pytest.mark.parametrize(
    "field", ["minDailyQuantity", "maxDailyQuantity", "noticePeriodHours", "serviceDays"]
)
def test_contract_integers_beyond_int4_are_400(cast: Cast, field: str, value: int) -> None:
    body: dict[str, Any] = {
        "cateringCompanyId": str(cast.catering.company.pk),
        "clientCompanyId": str(cast.client.company.pk),
        "pricePerService": 10,
        "minDailyQuantity": 1,
        "maxDailyQuantity": 10,
        "noticePeriodHours": 24,
        "serviceDays": [1],
    }
    body[field] = [value] if field == "serviceDays" else value
    written = counts()
    res = send(cast.api(cast.client.manager), "POST", "/api/contracts", json.dumps(body))
    messages = bad_request(res)
    if field == "serviceDays":
        assert messages == ["each value in serviceDays must not be greater than 7"]
    else:
        assert messages == [f"{field} must not be greater than {INT4_MAX}"]
    assert counts() == written


@pytest.mark.parametrize("value", HUGE_INTEGERS)
def test_company_integers_beyond_int4_are_400(cast: Cast, value: int) -> None:
    before = snapshot(Company, cast.client.company.pk)
    res = send(
        cast.api(cast.client.admin),
        "PATCH",
        f"/api/clients/{cast.client.company.pk}",
        json.dumps({"officeDays": [value]}),
    )
    bad_request(res, ["each value in officeDays must not be greater than 7"])
    res = send(
        cast.api(cast.catering.admin),
        "PATCH",
        f"/api/caterings/{cast.catering.company.pk}",
        json.dumps({"dailyCapacity": value}),
    )
    bad_request(res, ["dailyCapacity must not be greater than 1000000"])
    assert snapshot(Company, cast.client.company.pk) == before


@pytest.mark.parametrize("name", ["page", "limit"])
@pytest.mark.parametrize("value", ["100000000000000000000", "9223372036854775808", "2147483648"])
def test_paging_beyond_int4_is_400_on_every_list(cast: Cast, name: str, value: str) -> None:
    contract = make_contract(cast)
    api = cast.api(cast.client.admin)
    limit = f"{name} must not be greater than {INT4_MAX if name == 'page' else 500}"
    for url in [
        *LIST_ENDPOINTS,
        f"/api/contracts/{contract.pk}/service-days?from=2026-01-01&to=2026-01-31",
    ]:
        sep = "&" if "?" in url else "?"
        bad_request(api.get(f"{url}{sep}{name}={value}"), [limit])


def test_the_largest_page_is_an_empty_page(cast: Cast) -> None:
    contract = make_contract(cast)
    api = cast.api(cast.client.admin)
    for url in [
        *LIST_ENDPOINTS,
        f"/api/contracts/{contract.pk}/service-days?from=2026-01-01&to=2026-01-31",
    ]:
        sep = "&" if "?" in url else "?"
        res = api.get(f"{url}{sep}page={INT4_MAX}&limit=500")
        assert res.status_code == 200, (url, res.content)
        assert res.json() == []


def test_huge_notice_period_neither_breaks_confirmation_nor_the_fallback(cast: Cast) -> None:
    """A notice period longer than the calendar: the deadline lies before year 1, so the
    client can no longer confirm and the fallback applies (instead of an OverflowError)."""
    contract = make_contract(cast, notice_period_hours=INT4_MAX)
    day = make_day(contract, date(2026, 1, 25))
    with time_machine.travel(datetime(2026, 1, 20, tzinfo=UTC), tick=False):
        res = send(
            cast.api(cast.client.employee),
            "POST",
            f"/api/service-days/{day.pk}/confirm-expected",
            json.dumps({"expectedQuantity": 20}),
        )
        bad_request(res)
        assert "Notice period of 2147483647 hours has passed" in res.json()["message"]
        assert ServiceDay.objects.get(pk=day.pk).expected_quantity is None
        summary = jobs.service_days_apply_fallback()
    assert summary.applied == 1
    assert ServiceDay.objects.get(pk=day.pk).expected_quantity == contract.min_daily_quantity


# --- 9. Dates at the ends of the calendar --------------------------------------------------


def test_weekly_report_for_a_week_past_the_calendar_is_400(cast: Cast) -> None:
    contract = make_contract(cast)
    api = cast.api(cast.client.employee)
    for week_start in ("9999-12-31", "9999-12-26", "9999-12-26T00:00:00Z"):
        for suffix in ("", "/csv"):
            res = api.get(
                f"/api/contracts/{contract.pk}/reports/weekly{suffix}?weekStart={week_start}"
            )
            bad_request(res, ["weekStart must be on or before 9999-12-25 (UTC)"])
    for week_start in ("9999-12-25", "9999-12-25T23:59:59.999Z", "9999-12-26T04:00:00%2B05:00"):
        res = api.get(f"/api/contracts/{contract.pk}/reports/weekly?weekStart={week_start}")
        assert res.status_code == 200, res.content
        assert (res.json()["weekStart"], res.json()["weekEnd"]) == ("9999-12-25", "9999-12-31")
    res = api.get(f"/api/contracts/{contract.pk}/reports/weekly/csv?weekStart=9999-12-25")
    assert res.status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-23:59",
        "9999-12-31T12:00:00-12:01",
        "0001-01-01T00:00:00%2B00:01",
        "0001-01-01T00:30:00%2B01:00",
    ],
)
def test_instants_outside_the_utc_calendar_are_400(cast: Cast, value: str) -> None:
    contract = make_contract(cast)
    api = cast.api(cast.client.employee)
    res = api.get(f"/api/contracts/{contract.pk}/service-days?from={value}&to=2026-01-31")
    bad_request(res, ["from must be a date between 0001-01-01 and 9999-12-31 (UTC)"])
    res = api.get(f"/api/contracts/{contract.pk}/service-days?from=2026-01-01&to={value}")
    bad_request(res, ["to must be a date between 0001-01-01 and 9999-12-31 (UTC)"])
    res = api.get(f"/api/contracts/{contract.pk}/reports/weekly?weekStart={value}")
    messages = bad_request(res)
    assert messages[0].startswith("weekStart must be")


def test_the_first_and_last_days_of_the_calendar_are_readable(cast: Cast) -> None:
    contract = make_contract(cast, start_date=date(1, 1, 1))
    api = cast.api(cast.client.employee)
    for query in (
        "from=0001-01-01&to=9999-12-31",
        "from=9999-12-31T23:59:59Z&to=9999-12-31",
        "from=0001-01-01T00:00:00-01:00&to=0001-01-01",
    ):
        res = api.get(f"/api/contracts/{contract.pk}/service-days?{query}")
        assert res.status_code == 200, (query, res.content)
    res = api.get(f"/api/contracts/{contract.pk}/reports/weekly?weekStart=0001-01-01")
    assert res.status_code == 200, res.content
    assert res.json()["weekStartDate"] == "0001-01-01T00:00:00.000Z"


def test_generation_at_the_end_of_the_calendar(cast: Cast) -> None:
    """The last days of year 9999 are real dates: generation creates them (no OverflowError);
    a range that leaves the calendar is invalid and creates nothing."""
    contract = make_contract(cast, weekdays=[1, 2, 3, 4, 5, 6, 7])
    api = cast.api(cast.client.manager)
    path = f"/api/contracts/{contract.pk}/service-days/generate"
    res = send(api, "POST", path, json.dumps({"fromDate": "9999-12-30", "toDate": "9999-12-31"}))
    assert res.status_code == 201, res.content
    assert [d["serviceDate"] for d in res.json()] == ["9999-12-30", "9999-12-31"]
    written = counts()
    res = send(
        api,
        "POST",
        path,
        json.dumps({"fromDate": "9999-12-31T00:00:00Z", "toDate": "9999-12-31T23:59:59-01:00"}),
    )
    bad_request(res, ["toDate must be a date between 0001-01-01 and 9999-12-31 (UTC)"])
    res = send(api, "POST", path, json.dumps({"fromDate": "9999-12-31", "toDate": "10000-01-01"}))
    bad_request(res, ["toDate must be a valid ISO 8601 date string"])
    assert counts() == written
    res = send(api, "POST", path, json.dumps({"fromDate": "0001-01-01", "toDate": "0001-01-02"}))
    assert res.status_code == 201 and res.json() == []  # before the contract starts


def test_contract_dated_at_the_end_of_the_calendar(cast: Cast) -> None:
    body = {
        "cateringCompanyId": str(cast.catering.company.pk),
        "clientCompanyId": str(cast.client.company.pk),
        "startDate": "9999-12-31",
        "endDate": "9999-12-31",
        "pricePerService": 10,
        "minDailyQuantity": 1,
        "maxDailyQuantity": 10,
        "noticePeriodHours": 24,
        "serviceDays": [5],
    }
    api = cast.api(cast.client.manager)
    res = send(api, "POST", "/api/contracts", json.dumps(body))
    assert res.status_code == 201, res.content
    contract_id = res.json()["id"]
    res = send(
        api,
        "POST",
        f"/api/contracts/{contract_id}/service-days/generate",
        json.dumps({"fromDate": "9999-12-26", "toDate": "9999-12-31"}),
    )
    assert [d["serviceDate"] for d in res.json()] == ["9999-12-31"]
    jobs.service_days_generate_upcoming()  # the daily job skips it without overflowing
    written = counts()
    res = send(
        api,
        "POST",
        "/api/contracts",
        json.dumps({**body, "startDate": "9999-12-31T23:00:00-01:00", "endDate": None}),
    )
    bad_request(res, ["startDate must be a date between 0001-01-01 and 9999-12-31 (UTC)"])
    assert counts() == written


# --- 10. Unknown routes and methods --------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE", "GET"])
def test_unknown_api_route_is_json_404_for_every_method_even_with_csrf_checks(
    method: str,
) -> None:
    client = APIClient(enforce_csrf_checks=True)
    for path in ("/api/nope", "/api/contracts/x/y/z", "/api", "/api/a%0Ab"):
        res = client.generic(method, path, "{}", content_type="application/json")
        assert res.status_code == 404, (path, res.content)
        assert res.json() == {
            "message": f"Cannot {method} {path.replace('%0A', chr(10))}",
            "error": "Not Found",
            "statusCode": 404,
        }


def test_wrong_known_method_on_a_known_route_stays_404(cast: Cast) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {session_access_token(cast.client.admin)}")
    for method, path in (
        ("PUT", f"/api/clients/{cast.client.company.pk}"),
        ("DELETE", "/api/contracts"),
    ):
        res = client.generic(method, path)
        assert res.status_code == 404
        assert res.json()["message"] == f"Cannot {method} {path}"


@pytest.mark.parametrize("method", ["TRACE", "FOO", "CONNECT", "PROPFIND"])
@pytest.mark.parametrize("path", ["/api/health", "/api/nope", "/api/clients", "/admin/", "/"])
def test_unknown_methods_are_json_405_on_any_route(method: str, path: str) -> None:
    res = APIClient(enforce_csrf_checks=True).generic(method, path)
    assert res.status_code == 405, res.content
    assert res.json() == {
        "message": f"Method {method} is not supported",
        "error": "Method Not Allowed",
        "statusCode": 405,
    }
    assert res["Allow"] == "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"


def test_admin_keeps_its_csrf_protection() -> None:
    res = APIClient(enforce_csrf_checks=True).post(
        "/admin/login/", {"username": "a", "password": "b"}
    )
    assert res.status_code == 403
    assert b"CSRF" in res.content


# --- 11. Integer query parameters: ASCII digits only ---------------------------------------


@pytest.mark.parametrize(
    "value",
    ["%EF%BC%91", "%C2%B2", "1_0", "%201", "1%20", "%2B1", "-1", "1.0", "0x1", "", "%D9%A3"],
)
@pytest.mark.parametrize("name", ["page", "limit"])
def test_paging_takes_ascii_digits_only(cast: Cast, name: str, value: str) -> None:
    contract = make_contract(cast)
    api = cast.api(cast.client.admin)
    for url in [
        *LIST_ENDPOINTS,
        f"/api/contracts/{contract.pk}/service-days?from=2026-01-01&to=2026-01-31",
    ]:
        sep = "&" if "?" in url else "?"
        bad_request(api.get(f"{url}{sep}{name}={value}"), [f"{name} must be a positive integer"])


def test_leading_zeros_are_still_ascii_digits(cast: Cast) -> None:
    res = cast.api(cast.client.admin).get("/api/users?page=0001&limit=002")
    assert res.status_code == 200
    assert len(res.json()) == 2


# --- Bodies: size and encoding -------------------------------------------------------------


def test_a_megabyte_body_is_413_and_nothing_is_written(cast: Cast) -> None:
    before = snapshot(Company, cast.client.company.pk)
    big = json.dumps({"name": "x" * (1024 * 1024)})
    contract = make_contract(cast)
    written = counts()
    for client, method, path in (
        (cast.api(cast.client.admin), "PATCH", f"/api/clients/{cast.client.company.pk}"),
        (APIClient(), "POST", "/api/auth/login"),
        (APIClient(), "POST", "/api/caterings"),
        (cast.api(cast.client.admin), "POST", f"/api/contracts/{contract.pk}/pause"),
        (APIClient(), "POST", "/api/nope"),
    ):
        res = send(client, method, path, big)
        assert res.status_code == 413, (path, res.content[:200])
        assert res.json() == {
            "message": f"Request body must not be larger than {MAX_BODY_BYTES} bytes",
            "error": HTTPStatus(413).phrase,
            "statusCode": 413,
        }
    assert snapshot(Company, cast.client.company.pk) == before
    assert counts() == written


def test_a_body_of_the_limit_is_parsed_one_byte_more_is_not(cast: Cast) -> None:
    api = cast.api(cast.client.admin)
    path = f"/api/clients/{cast.client.company.pk}"
    body = json.dumps({"name": "x" * (MAX_BODY_BYTES - len(json.dumps({"name": ""})))})
    assert len(body) == MAX_BODY_BYTES
    bad_request(
        send(api, "PATCH", path, body), ["name must be shorter than or equal to 255 characters"]
    )
    assert send(api, "PATCH", path, body + " ").status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        b'{"name":"\xff\xfe"}',
        b'{"name":"\xed\xb3\x80"}',  # a surrogate encoded as UTF-8 is invalid UTF-8
        b"name=x",
        b'{"name":NaN}',
        b'{"name":Infinity}',
        b'\xef\xbb\xbf{"name":"x"}',
    ],
)
def test_non_json_or_invalid_utf8_body_is_400(cast: Cast, body: bytes) -> None:
    before = snapshot(Company, cast.client.company.pk)
    res = send(cast.api(cast.client.admin), "PATCH", f"/api/clients/{cast.client.company.pk}", body)
    message = bad_request(res)
    assert isinstance(message, str) and message.startswith("Malformed JSON")
    assert snapshot(Company, cast.client.company.pk) == before


def test_a_body_of_another_media_type_is_415_in_the_error_shape(cast: Cast) -> None:
    res = send(
        cast.api(cast.client.admin),
        "PATCH",
        f"/api/clients/{cast.client.company.pk}",
        b"name=x",
        content_type="application/x-www-form-urlencoded",
    )
    assert res.status_code == 415
    assert res.json()["error"] == "Unsupported Media Type"


def test_too_many_query_parameters_is_json_400(cast: Cast) -> None:
    query = "&".join(f"a{i}=1" for i in range(1001))
    res = cast.api(cast.catering.admin).get(f"/api/clients?{query}")
    bad_request(res, ["Too many query parameters (at most 1000)"])


def test_a_bad_host_on_an_api_path_is_json_400() -> None:
    res = APIClient().get("/api/clients", HTTP_HOST="evil.example")
    assert res.status_code == 400
    assert res.json()["statusCode"] == 400
