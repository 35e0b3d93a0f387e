"""Input (strict) and output serializers of the service-day, report and metrics APIs."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from chefops.api import fields
from chefops.api.serializers import ApiModelSerializer, StrictSerializer
from chefops.api.shapes import Shape
from servicedays import rules
from servicedays.models import ServiceDay, ServiceDayStatus

if TYPE_CHECKING:  # type-only: servicedays.selectors imports SERVICE_DAY from this module
    from servicedays.selectors import WeeklyReport

# --- Input ------------------------------------------------------------------------------------
# The OpenAPI schema of these fields comes from companies/schema.py (ApiFieldExtension), with
# the bounds their checks apply (an integer's minimum and the int4 maximum, for instance).


class DateInput(fields.IsoDateField):
    pass


class IntInput(fields.IntegerField):
    pass


class TextInput(fields.StringField):
    pass


class ServiceDayRangeQuery(StrictSerializer):
    """``?from=&to=`` (both required ISO dates) plus the paging parameters of every list."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so the fields are declared here rather than as attributes.
        return {
            "from": DateInput(),
            "to": DateInput(),
            "page": TextInput(required=False),
            "limit": TextInput(required=False),
        }


class GenerateInput(StrictSerializer):
    """fromDate..toDate, both included, at most 366 days; only the contract's weekdays inside
    its start and end dates are created, days that exist are left alone."""

    from_date = DateInput()
    to_date = DateInput()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if rules.inclusive_day_count(attrs["from_date"], attrs["to_date"]) > (
            rules.MAX_GENERATION_DAYS
        ):
            raise fields.api_error(
                [f"The range fromDate..toDate must not exceed {rules.MAX_GENERATION_DAYS} days"]
            )
        return attrs


class ConfirmExpectedInput(StrictSerializer):
    expected_quantity = IntInput(min_value=0)


class ConfirmServedInput(StrictSerializer):
    served_quantity = IntInput(min_value=0)


# The latest instant whose week (start + 6 days) the calendar can still represent.
LAST_WEEK_START = datetime.max.replace(tzinfo=UTC) - timedelta(days=rules.REPORT_DAYS - 1)


def _week_start(value: Any) -> datetime | None:
    """The instant a week starts at (UTC midnight for a plain date), None if not an instant
    inside the calendar."""
    try:
        parsed = fields.parse_iso_instant(value)
    except fields.OutsideCalendar:
        return None
    if parsed is None or isinstance(parsed, datetime):
        return parsed
    return rules.utc_midnight(parsed)


def _week_fits_calendar(value: Any) -> bool:
    """Its seventh day (start + 6 days) is still a date of the calendar; speaks only for valid
    instants, which the other checks answer for."""
    start = _week_start(value)
    return start is None or start <= LAST_WEEK_START


class WeekStartField(fields.IsoDateField):
    """Like the original, the week starts at the instant sent (UTC midnight for a plain date);
    the rows are those whose date lies between that instant's UTC date and six days later."""

    def checks(self) -> list[tuple[str, Callable[[Any], bool], str]]:
        last = LAST_WEEK_START.date().isoformat()
        return [
            *super().checks(),
            ("week", _week_fits_calendar, "{name} must be on or before " + last + " (UTC)"),
        ]

    def convert(self, value: Any) -> datetime:
        start = _week_start(value)
        assert start is not None  # guaranteed by the checks
        return start


class WeeklyReportQuery(StrictSerializer):
    week_start = WeekStartField()


# --- Output -----------------------------------------------------------------------------------


class ServiceDaySerializer(ApiModelSerializer):
    """The service-day object of reference §3.6: all ten keys, nulls explicit."""

    contract_id = serializers.UUIDField(read_only=True)
    service_date = serializers.DateField(format="%Y-%m-%d", read_only=True)

    class Meta:
        model = ServiceDay
        fields = [
            "id",
            "contract_id",
            "service_date",
            "expected_quantity",
            "served_quantity",
            "expected_confirmed_at",
            "served_confirmed_at",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


SERVICE_DAY = Shape(ServiceDaySerializer)


def service_day_data(day: ServiceDay) -> dict[str, Any]:
    """What ServiceDaySerializer gives for ``day``, from the function SERVICE_DAY generates
    from its fields (chefops/api/shapes.py): lists render many of these, and a
    ModelSerializer per row was most of the cost of the request."""
    return SERVICE_DAY.represent(day)


class CompanyRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


# The weekly report's objects, read from servicedays.selectors.WeeklyReport and its ReportDay
# rows (``source``): rendered by their Shape (WEEKLY_REPORT below), the one definition of the
# body, which DRF's rendering of the same serializers matches (servicedays/tests).


class ReportDaySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    service_date = serializers.DateField()
    expected_quantity = serializers.IntegerField(allow_null=True)
    served_quantity = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=ServiceDayStatus.choices)
    cost = fields.JsonNumberField()


class ReportEntrySerializer(serializers.Serializer):
    date = serializers.DateField(source="service_date")
    day_of_week = serializers.CharField(help_text="English short weekday name: Mon … Sun (UTC)")
    expected_quantity = serializers.IntegerField(allow_null=True)
    served_quantity = serializers.IntegerField(allow_null=True)
    difference = serializers.IntegerField(
        allow_null=True, help_text="servedQuantity - expectedQuantity, null unless both are set"
    )
    status = serializers.ChoiceField(choices=ServiceDayStatus.choices)


class ReportSummarySerializer(serializers.Serializer):
    total_days = serializers.IntegerField()
    confirmed_days = serializers.IntegerField()
    pending_days = serializers.IntegerField()
    total_expected = serializers.IntegerField()
    total_served = serializers.IntegerField()
    total_cost = fields.JsonNumberField()


class ReportTotalsSerializer(serializers.Serializer):
    total_expected = serializers.IntegerField()
    total_served = serializers.IntegerField()
    total_difference = serializers.IntegerField(
        help_text="Sum of the per-day differences that are known"
    )


class WeeklyReportSerializer(serializers.Serializer):
    """The original's keys, plus weekStart/weekEnd/entries/totals that the frontend reads."""

    contract_id = serializers.UUIDField()
    catering_company = CompanyRefSerializer(source="catering")
    client_company = CompanyRefSerializer(source="client")
    price_per_service = fields.JsonNumberField(source="price")
    week_start_date = serializers.CharField(help_text="ISO instant (UTC, ms)")
    week_end_date = serializers.CharField(help_text="ISO instant (UTC, ms)")
    summary = ReportSummarySerializer(source="*")
    service_days = ReportDaySerializer(many=True, source="days")
    week_start = serializers.DateField(source="first_date")
    week_end = serializers.DateField(source="last_date")
    entries = ReportEntrySerializer(many=True, source="days")
    totals = ReportTotalsSerializer(source="*")


WEEKLY_REPORT = Shape(WeeklyReportSerializer)


def weekly_report_data(report: WeeklyReport) -> dict[str, Any]:
    """The weekly report's JSON body (camelCase keys), derived from WeeklyReportSerializer."""
    return WEEKLY_REPORT.render(report)


# Finance metrics (the schema of selectors.finance_metrics_for). One shape for both company
# types: a client's figures are its spend, a caterer's the revenue of the same contracts.
_MONEY = "Rounded to an integer (halves up)."


class AmountTrendSerializer(serializers.Serializer):
    current = serializers.IntegerField(help_text="This month. " + _MONEY)
    previous_month = serializers.IntegerField(help_text="The previous month. " + _MONEY)
    change = serializers.FloatField(
        help_text="From the previous month to this one, one decimal; 0 without a previous "
        "month (costPerPerson: percent; utilizationRate: percentage points)."
    )


class UpcomingSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        source="upcoming_count",
        help_text="Service days from today to today + 7 with an expected quantity.",
    )
    estimated_cost = serializers.IntegerField(
        source="upcoming_estimated_cost",
        help_text="Their expected quantity x price: the client's expected spend, the "
        "caterer's expected revenue. " + _MONEY,
    )


class KpisSerializer(serializers.Serializer):
    cost_per_person = AmountTrendSerializer(
        help_text="Money per person served (confirmed days): what the client pays, what the "
        "caterer earns per person."
    )
    utilization_rate = AmountTrendSerializer(
        help_text="Served / expected x 100 over the month (confirmed served quantities, "
        "every expected quantity)."
    )
    contracts_with_deviation = serializers.IntegerField(
        help_text="Contracts of the caller whose served quantities this month are off their "
        "expected quantities by more than 10 % (days with both above zero)."
    )
    upcoming_services_week = UpcomingSerializer(source="*")


class BudgetSerializer(serializers.Serializer):
    consumed = serializers.IntegerField(
        help_text="This month's served quantity x price on confirmed days: the client's spend, "
        "the caterer's revenue. " + _MONEY
    )
    estimated = serializers.IntegerField(
        help_text="This month's expected quantity x price (any status). " + _MONEY
    )
    projected_end_of_month = serializers.IntegerField(
        help_text="consumed / day of the month x days in the month. " + _MONEY
    )
    previous_month = serializers.IntegerField(
        help_text="consumed over the previous month. " + _MONEY
    )


class RecentServiceSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    date = serializers.DateField()
    contract_id = serializers.UUIDField()
    catering_company_name = serializers.CharField(
        help_text="The contract's catering company (the caller itself when it is a caterer)."
    )
    client_company_name = serializers.CharField(
        help_text="The contract's client company (the caller itself when it is a client)."
    )
    expected = serializers.IntegerField(allow_null=True)
    actual = serializers.IntegerField(allow_null=True, help_text="The served quantity.")
    deviation = serializers.IntegerField(allow_null=True, help_text="actual - expected.")
    cost = fields.JsonNumberField(
        allow_null=True,
        help_text="actual x price, unrounded: the client's spend, the caterer's revenue.",
    )
    status = serializers.ChoiceField(choices=ServiceDayStatus.choices)


# Read from servicedays.selectors.FinanceMetrics (``source``), rendered by its Shape.
class FinanceMetricsSerializer(serializers.Serializer):
    budget = BudgetSerializer(source="*")
    kpis = KpisSerializer(source="*")
    recent_services = RecentServiceSerializer(many=True)


FINANCE_METRICS = Shape(FinanceMetricsSerializer)


def weekly_report_csv(report: WeeklyReport) -> str:
    """The reference's CSV lines and columns, as proper CSV (a field with a comma or a quote
    is quoted); lines joined with ``\\n`` and no trailing newline, like the original."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f"Weekly Report - {report.catering.name} / {report.client.name}"])
    writer.writerow([f"Week: {report.first_date.isoformat()} to {report.last_date.isoformat()}"])
    writer.writerow([f"Price per Service: {rules.js_number_text(report.price)}"])
    writer.writerow([])
    writer.writerow(["Date", "Day", "Expected Quantity", "Served Quantity", "Status", "Cost"])
    for day in report.days:
        writer.writerow(
            [
                day.service_date.isoformat(),
                rules.weekday_short_name(day.service_date),
                "" if day.expected_quantity is None else day.expected_quantity,
                "" if day.served_quantity is None else day.served_quantity,
                day.status,
                rules.money_text(day.cost),
            ]
        )
    writer.writerow([])
    writer.writerow(["Total Days", len(report.days)])
    writer.writerow(["Confirmed Days", report.confirmed_days])
    writer.writerow(["Total Expected", report.total_expected])
    writer.writerow(["Total Served", report.total_served])
    writer.writerow(["Total Cost", rules.money_text(report.total_cost)])
    return buffer.getvalue().removesuffix("\n")
