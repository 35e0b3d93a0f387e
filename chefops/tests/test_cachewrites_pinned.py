"""Which rows a bulk write's filter pins (chefops/cachewrites.py ``pinned``): a pinned write
bumps only its rows' tokens, anything else the model's whole scope. No database needed."""

from __future__ import annotations

import uuid

from django.db.models import Q

from chefops.cachewrites import pinned
from contracts.models import Contract
from servicedays.models import ServiceDay

CONTRACT = Contract(id=uuid.uuid4())
ID = CONTRACT.pk


def test_equality_and_membership_on_the_column_pin_the_rows() -> None:
    days = ServiceDay.objects
    assert pinned(CONTRACT.weekdays.all(), "contract_id") == {ID}  # a related manager
    assert pinned(days.filter(contract=CONTRACT), "contract_id") == {ID}
    assert pinned(days.filter(contract__pk=ID), "contract_id") == {ID}
    assert pinned(days.filter(contract_id__in=[ID, ID]), "contract_id") == {ID}
    assert pinned(days.filter(pk=str(ID), status="PENDING"), "id") == {ID}  # ANDed: still pinned
    other = uuid.uuid4()
    assert pinned(days.filter(pk__in=[ID, other]).filter(pk=ID), "id") == {ID}  # intersected


def test_anything_else_pins_nothing() -> None:
    days = ServiceDay.objects
    assert pinned(days.all(), "id") is None
    assert pinned(days.filter(status="PENDING"), "id") is None
    assert pinned(days.exclude(pk=ID), "id") is None
    assert pinned(days.filter(Q(pk=ID) | Q(status="PENDING")), "id") is None
    assert (
        pinned(days.filter(contract__in=Contract.objects.filter(status="ACTIVE")), "contract_id")
        is None
    )
    assert pinned(days.filter(contract__catering_company_id=ID), "contract_id") is None
    assert pinned(days.filter(contract=CONTRACT), "id") is None  # another column
