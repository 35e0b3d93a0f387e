"""The Django admin as a caller of the services (STYLE.md "One code path per action").

A ModelAdmin whose save and delete hooks call services mixes in ``ServiceAdminMixin``. A
service checks its rules after the form validated and refuses with a ``DomainError``
(chefops/api/errors.py); here that refusal becomes what the staff member sees instead of a
500:

* on the add/change page, the admin's transaction is rolled back and the page is rendered
  again from the same POST, with the service's message as an error of the form (the input
  is kept, nothing was written);
* on the delete page, a message, back on the object's page;
* the "delete selected" action deletes all or nothing: the first refusal rolls the others
  back and is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from chefops.api.errors import DomainError
from companies.models import User

_REFUSAL = "_chefops_service_refusal"


def refusal_text(exc: DomainError) -> str:
    return exc.message if isinstance(exc.message, str) else "; ".join(exc.message)


def acting_staff(request: HttpRequest) -> User:
    """The staff member the admin acts as: the services' ``actor``."""
    user = request.user
    assert isinstance(user, User)  # the admin requires a logged-in staff user
    return user


def _all_or_nothing(action: Callable[..., Any]) -> Callable[..., Any]:
    def run(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        try:
            with transaction.atomic():
                return action(modeladmin, request, queryset)
        except DomainError as exc:
            modeladmin.message_user(
                request, f"Nothing deleted: {refusal_text(exc)}", messages.ERROR
            )
            return None

    return run


class ServiceAdminMixin:
    """Mix into a ModelAdmin (before it) whose hooks call services; see the module doc."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(  # type: ignore[misc]
                request, object_id, form_url, extra_context
            )
        except DomainError as exc:
            if request.method != "POST" or hasattr(request, _REFUSAL):
                raise
            # The form validated, the service said no: render the same POST again, this time
            # with the service's reason as the form's error (get_form), so nothing is saved.
            setattr(request, _REFUSAL, exc)
            return super().changeform_view(  # type: ignore[misc]
                request, object_id, form_url, extra_context
            )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]
        found: DomainError | None = getattr(request, _REFUSAL, None)
        if found is None:
            return form
        refusal: DomainError = found

        class Refused(form):  # type: ignore[valid-type,misc]
            def clean(self) -> Any:
                super().clean()
                message = refusal.message
                raise forms.ValidationError(message if isinstance(message, str) else list(message))

        Refused.__name__ = form.__name__
        return Refused

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)  # type: ignore[misc]
        except DomainError as exc:
            self.message_user(request, refusal_text(exc), messages.ERROR)  # type: ignore[attr-defined]
            opts = self.model._meta  # type: ignore[attr-defined]
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions: dict[str, Any] = super().get_actions(request)  # type: ignore[misc]
        if "delete_selected" in actions:
            func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_all_or_nothing(func), name, description)
        return actions


def copy_fields(target: Model, source: Model) -> None:
    """Make the admin's ``form.instance`` describe the row a service wrote: the admin logs,
    messages and redirects with it after ``save_model``."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db
