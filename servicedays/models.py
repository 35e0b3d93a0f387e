"""Service days: one row per (contract, calendar date) on which the caterer serves the client."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone

from chefops import cachewrites
from contracts.models import Contract


class ServiceDayStatus(models.TextChoices):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"


class ServiceDay(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No separate FK index: the unique (contract, service_date) index already leads with it.
    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="service_days", db_index=False
    )
    # A calendar date with no time of day; every rule reads it as 00:00 UTC.
    service_date = models.DateField()
    expected_quantity = models.IntegerField(null=True, blank=True)
    served_quantity = models.IntegerField(null=True, blank=True)
    expected_confirmed_at = models.DateTimeField(null=True, blank=True)
    served_confirmed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ServiceDayStatus.choices, default=ServiceDayStatus.PENDING
    )
    # Python-side defaults (not now() in SQL) so tests that move the clock see their time;
    # the set-based generation job passes the same instant explicitly.
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["service_date", "id"]
        constraints = [
            # On PostgreSQL its index also carries the id, status and quantities (INCLUDE,
            # migration 0003): it is the hot path too, a contract's days in a date range in
            # either direction (SPEC §5.3), and the finance aggregates, the ten recent services
            # and the weekly report read it only, not one heap page per day (days of one
            # contract are spread over the table by date). With the id in it the recent
            # services probe each contract instead of every tenant's days of the month
            # (docs/benchmarks.md, "Issue #18: cost as data grows").
            models.UniqueConstraint(
                fields=["contract", "service_date"], name="serviceday_contract_date_unique"
            ),
            models.CheckConstraint(
                condition=Q(expected_quantity__isnull=True) | Q(expected_quantity__gte=0),
                name="serviceday_expected_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(served_quantity__isnull=True) | Q(served_quantity__gte=0),
                name="serviceday_served_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ServiceDayStatus.values), name="serviceday_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=ServiceDayStatus.CONFIRMED) | Q(served_quantity__isnull=False),
                name="serviceday_confirmed_has_served",
            ),
        ]
        indexes = [
            models.Index(fields=["service_date"], name="serviceday_date_idx"),
            models.Index(fields=["contract", "status"], name="serviceday_contract_status_idx"),
            # The hourly fallback only ever looks at days still waiting for an expected
            # quantity; a partial index keeps that scan tiny on a table of millions of rows.
            models.Index(
                fields=["service_date"],
                condition=Q(expected_quantity__isnull=True, status=ServiceDayStatus.PENDING),
                name="serviceday_fallback_due_idx",
            ),
        ]

    # update/delete/bulk_* invalidate the caches (chefops/cachewrites.py)
    objects: ClassVar[models.Manager[ServiceDay]] = cachewrites.ServiceDayQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.contract_id} {self.service_date.isoformat()} ({self.status})"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        # No post_delete receiver: it would stop a contract's delete from removing its days
        # in bulk. Its contract's range and report, and its parties' finance metrics.
        deleted = super().delete(*args, **kwargs)
        if cachewrites.active():
            cachewrites.service_days_changed(
                [self.contract_id], cachewrites.parties_of_objects([self])
            )
        return deleted


class ContractMonthTotal(models.Model):
    """A contract's sums over one calendar month of its service days, kept by PostgreSQL
    triggers on the service days (migration 0004), never written by the application: the
    finance metrics read two of these per contract instead of two months of days (issue #18,
    docs/benchmarks.md). ``served`` sums the served quantities of CONFIRMED days,
    ``expected`` the expected quantities of all days, the ``deviation_`` pair both over the
    days where both are above zero (the deviation KPI). SQLite has no such triggers: there
    the table stays empty and the metrics read the days (servicedays/selectors.py).

    No foreign-key constraint: a contract's days are deleted before the contract, and a
    trigger on the contracts removes their rows; ``manage.py month_totals`` checks or
    rebuilds the table."""

    contract = models.ForeignKey(
        Contract,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the unique (contract, month) index leads with it
        related_name="+",
    )
    month = models.DateField()  # its first day
    served = models.BigIntegerField(default=0)
    expected = models.BigIntegerField(default=0)
    deviation_served = models.BigIntegerField(default=0)
    deviation_expected = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contract", "month"], name="contractmonth_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.contract_id} {self.month:%Y-%m}"
