"""Reads of the accounts app. Each takes the acting user; query counts are fixed."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from chefops.api.errors import NotFound
from companies.models import ClientOfficeDay, Company, CompanyType, User
from companies.services import COMPANY_LABELS


def company_list(
    *,
    actor: User,
    company_type: str,
    search: str | None = None,
    status: str | None = None,
) -> QuerySet[Company]:
    """The directory of one company type, visible to every authenticated user (the frontend
    lists caterers and clients to pick contract parties). Profile by join, office days by one
    prefetch query: three queries per page whatever its size (count, rows, office days)."""
    queryset = _with_profile(Company.objects.filter(company_type=company_type), company_type)
    if search:
        queryset = queryset.filter(name__icontains=search)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("created_at", "id")


def company_get(*, actor: User, company_id: Any, company_type: str) -> Company:
    company = (
        _with_profile(Company.objects.filter(company_type=company_type), company_type)
        .filter(pk=company_id)
        .first()
    )
    if company is None:
        raise NotFound(f"{COMPANY_LABELS[CompanyType(company_type)]} #{company_id} not found")
    return company


def company_reload(*, company: Company) -> Company:
    """A company as the API returns it (after a write)."""
    return (
        _with_profile(Company.objects.filter(pk=company.pk), company.company_type)
        .filter(pk=company.pk)
        .get()
    )


def _with_profile(queryset: QuerySet[Company], company_type: str) -> QuerySet[Company]:
    if company_type == CompanyType.CATERING:
        return queryset.select_related("catering_profile")
    return queryset.select_related("client_profile").prefetch_related(
        Prefetch("office_days", queryset=ClientOfficeDay.objects.order_by("id"))
    )


def user_list(*, actor: User) -> QuerySet[User]:
    """Users of the actor's own company only."""
    if actor.company_id is None:
        return User.objects.none()
    return User.objects.filter(company_id=actor.company_id).order_by("created_at", "id")


def user_get(*, actor: User, user_id: Any) -> User:
    """Another company's user is indistinguishable from a missing one (404)."""
    user = user_list(actor=actor).filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"User #{user_id} not found")
    return user
