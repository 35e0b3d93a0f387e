"""factory-boy factories shared by every app's tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from factory.django import DjangoModelFactory

from companies.models import (
    CateringProfile,
    ClientOfficeDay,
    ClientProfile,
    Company,
    CompanyType,
    Role,
    User,
    WorkMode,
)
from contracts.models import Contract, ContractWeekday

TEST_PASSWORD = "correct-horse-42"


class CompanyFactory(DjangoModelFactory[Company]):
    class Meta:
        model = Company
        skip_postgeneration_save = True

    company_type = CompanyType.CATERING
    name = factory.Sequence(lambda n: f"Company {n}")
    email = factory.Sequence(lambda n: f"company{n}@example.com")
    tax_id = factory.Sequence(lambda n: f"30-{n:08d}-1")


class CateringFactory(CompanyFactory):
    company_type = CompanyType.CATERING
    name = factory.Sequence(lambda n: f"Catering {n}")
    email = factory.Sequence(lambda n: f"catering{n}@example.com")
    profile = factory.RelatedFactory(
        "chefops.testing.factories.CateringProfileFactory", factory_related_name="company"
    )


class ClientFactory(CompanyFactory):
    company_type = CompanyType.CLIENT
    name = factory.Sequence(lambda n: f"Client {n}")
    email = factory.Sequence(lambda n: f"client{n}@example.com")
    profile = factory.RelatedFactory(
        "chefops.testing.factories.ClientProfileFactory", factory_related_name="company"
    )

    @factory.post_generation
    def office_days(obj: Company, create: bool, extracted: list[int] | None, **kwargs: Any) -> None:
        if create:
            for day in extracted if extracted is not None else [1, 3, 5]:
                ClientOfficeDay.objects.create(company=obj, day_of_week=day)


class CateringProfileFactory(DjangoModelFactory[CateringProfile]):
    class Meta:
        model = CateringProfile

    daily_capacity = 500


class ClientProfileFactory(DjangoModelFactory[ClientProfile]):
    class Meta:
        model = ClientProfile

    work_mode = WorkMode.HYBRID


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    role = Role.EMPLOYEE
    company = factory.SubFactory(CateringFactory)

    @factory.post_generation
    def password(obj: User, create: bool, extracted: str | None, **kwargs: Any) -> None:
        obj.set_password(extracted or TEST_PASSWORD)
        if create:
            obj.save(update_fields=["password"])


class ContractFactory(DjangoModelFactory[Contract]):
    class Meta:
        model = Contract
        skip_postgeneration_save = True

    catering_company = factory.SubFactory(CateringFactory)
    client_company = factory.SubFactory(ClientFactory)
    price_per_service = Decimal("15.50")
    min_daily_quantity = 20
    max_daily_quantity = 80
    notice_period_hours = 24

    @factory.post_generation
    def weekdays(obj: Contract, create: bool, extracted: list[int] | None, **kwargs: Any) -> None:
        if create:
            for day in extracted if extracted is not None else [1, 3, 5]:
                ContractWeekday.objects.create(contract=obj, day_of_week=day)
