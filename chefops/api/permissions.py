"""Roles and company types (SPEC §2.1), as functions and as DRF permission classes.

EMPLOYEE reads everything of its company and confirms service-day quantities; MANAGER also
creates and changes contracts and generates service days; ADMIN also edits the company profile
and its users. A forbidden action is 403 with a message naming the role(s) needed.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from chefops.api.errors import Forbidden
from companies.models import CompanyType, Role, User

MEMBERS = (Role.ADMIN, Role.MANAGER, Role.EMPLOYEE)
MANAGERS = (Role.ADMIN, Role.MANAGER)
ADMINS = (Role.ADMIN,)


def role_message(roles: tuple[str, ...]) -> str:
    names = " or ".join(str(r) for r in roles)
    return f"This action requires the {names} role"


def require_role(user: User, roles: tuple[str, ...]) -> None:
    if user.role not in roles:
        raise Forbidden(role_message(roles))


def require_company_type(user: User, company_type: str) -> None:
    if user.company is None or user.company.company_type != company_type:
        raise Forbidden(f"This action is restricted to {company_type} companies")


class _RolePermission(BasePermission):
    roles: tuple[str, ...] = ()

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not isinstance(user, User) or user.company_id is None:
            return False
        require_role(user, self.roles)
        return True


class IsCompanyMember(_RolePermission):
    roles = (Role.ADMIN, Role.MANAGER, Role.EMPLOYEE)


class IsManagerOrAdmin(_RolePermission):
    roles = MANAGERS


class IsCompanyAdmin(_RolePermission):
    roles = ADMINS


class _CompanyTypePermission(BasePermission):
    company_type: str = ""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not isinstance(user, User):
            return False
        require_company_type(user, self.company_type)
        return True


class IsClientCompany(_CompanyTypePermission):
    company_type = CompanyType.CLIENT


class IsCateringCompany(_CompanyTypePermission):
    company_type = CompanyType.CATERING


class RolesByMethod(BasePermission):
    """Roles per HTTP method, declared on the view: ``roles_by_method = {"POST": ADMINS}``.

    Methods not listed: reading (GET/HEAD/OPTIONS) is open to every member of a company,
    anything else needs ADMIN, so a forgotten entry fails closed.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not isinstance(user, User) or user.company_id is None:
            return False
        declared: dict[str, tuple[str, ...]] = getattr(view, "roles_by_method", {})
        default = MEMBERS if request.method in SAFE_METHODS else ADMINS
        require_role(user, declared.get(str(request.method), default))
        return True
