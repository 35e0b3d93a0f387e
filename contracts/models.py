"""A contract between a catering company and a client company."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, ClassVar

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from chefops import cachewrites
from companies.models import Company


class ContractStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"


def today_utc() -> date:
    return timezone.now().date()  # USE_TZ=True and TIME_ZONE=UTC: now() is aware UTC


class Contract(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    catering_company = models.ForeignKey(
        Company, on_delete=models.PROTECT, related_name="catering_contracts"
    )
    client_company = models.ForeignKey(
        Company, on_delete=models.PROTECT, related_name="client_contracts"
    )
    start_date = models.DateField(default=today_utc)
    end_date = models.DateField(null=True, blank=True)
    price_per_service = models.DecimalField(max_digits=12, decimal_places=2)
    flexible_quantity = models.BooleanField(default=True)
    min_daily_quantity = models.PositiveIntegerField()
    max_daily_quantity = models.PositiveIntegerField()
    notice_period_hours = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=ContractStatus.choices, default=ContractStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["catering_company", "client_company"],
                condition=Q(status="ACTIVE"),
                name="contract_one_active_per_pair",
                violation_error_message=(
                    "An active contract already exists between this catering and this client"
                ),
            ),
            models.CheckConstraint(
                condition=Q(min_daily_quantity__lte=F("max_daily_quantity")),
                name="contract_min_le_max",
                violation_error_message=(
                    "minDailyQuantity cannot be greater than maxDailyQuantity"
                ),
            ),
            models.CheckConstraint(
                condition=Q(price_per_service__gte=0),
                name="contract_price_non_negative",
                violation_error_message="pricePerService must not be less than 0",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="contract_end_after_start",
                violation_error_message="endDate must not be before startDate",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ContractStatus.values), name="contract_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(catering_company=F("client_company")),
                name="contract_parties_differ",
                violation_error_message="The catering and the client must be different companies",
            ),
        ]
        indexes = [
            models.Index(fields=["catering_company", "status"], name="contract_catering_idx"),
            models.Index(fields=["client_company", "status"], name="contract_client_idx"),
            models.Index(fields=["status"], name="contract_status_idx"),
        ]

    # update/delete/bulk_* invalidate the caches (chefops/cachewrites.py)
    objects: ClassVar[models.Manager[Contract]] = cachewrites.ContractQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Contract {self.id} ({self.status})"


class ContractWeekday(models.Model):
    """A weekday served by a contract (1 = Monday … 7 = Sunday), in insertion order."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="weekdays")
    day_of_week = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["id"]
        indexes = [
            # A page of contracts reads each one's weekdays in insertion order: from the index
            # alone, already in order (no heap visit, no sort per contract; issue #18).
            models.Index(
                fields=["contract", "id"], include=("day_of_week",), name="contractweekday_cov"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "day_of_week"],
                name="contract_weekday_unique",
                violation_error_message="serviceDays must not contain duplicate values",
            ),
            models.CheckConstraint(
                condition=Q(day_of_week__gte=1, day_of_week__lte=7),
                name="contract_weekday_range",
                violation_error_message="A weekday is a number from 1 (Monday) to 7 (Sunday)",
            ),
        ]

    # update/delete/bulk_* invalidate the caches (chefops/cachewrites.py)
    objects: ClassVar[models.Manager[ContractWeekday]] = (
        cachewrites.ContractWeekdayQuerySet.as_manager()
    )

    def __str__(self) -> str:
        return f"{self.contract_id}: {self.day_of_week}"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        # No post_delete receiver: it would stop a contract's delete from removing its
        # weekdays in bulk. The weekdays show in both parties' contract lists.
        deleted = super().delete(*args, **kwargs)
        if cachewrites.active():
            cachewrites.contracts_changed(cachewrites.parties_of_objects([self]))
        return deleted
