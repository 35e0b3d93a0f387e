"""Every contract route, seen from companies that are not (the right) party."""

from __future__ import annotations

import pytest

from chefops.testing.cast import Cast
from contracts.models import Contract
from contracts.tests.helpers import create_body, get, post
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db


def test_non_parties_get_nothing_from_any_route(cast: Cast, contract: Contract) -> None:
    base = f"/api/contracts/{contract.id}"
    for tenant in (cast.other_catering, cast.other_client):
        for user in (tenant.admin, tenant.manager, tenant.employee):
            api = cast.api(user)
            assert get(api, "/api/contracts").json() == []
            assert get(api, base).status_code == 403
            for action in ("pause", "resume", "terminate"):
                assert post(api, f"{base}/{action}").status_code == 403
            res = post(api, "/api/contracts", create_body(cast, serviceDays=[2]))
            assert res.status_code == 403
    contract.refresh_from_db()
    assert contract.status == "ACTIVE"
    assert Contract.objects.count() == 1
    assert not OutboxEvent.objects.exists()


def test_the_caterer_party_cannot_transition(cast: Cast, contract: Contract) -> None:
    for user in (cast.catering.admin, cast.catering.manager):
        for action in ("pause", "resume", "terminate"):
            res = post(cast.api(user), f"/api/contracts/{contract.id}/{action}")
            assert res.status_code == 403
            assert res.json()["message"] == "This action is restricted to CLIENT companies"
    assert not OutboxEvent.objects.exists()
