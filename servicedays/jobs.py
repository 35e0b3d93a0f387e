"""Scheduled jobs over every contract: daily generation and the hourly expected-quantity fallback.

Both are set-based on PostgreSQL (one statement, no per-contract loop) and take a
transaction-level advisory lock so overlapping runs (two beat ticks, a manual run during a
scheduled one) skip instead of doing the work twice. SQLite has no advisory locks; its
IMMEDIATE transactions already serialize writers, so there the lock is a no-op.

The generation also has a per-contract entry point (``service_days_generate_for_contracts``):
the same statement restricted to some contracts, run after a contract is created or resumed
(servicedays.tasks.generate_for_contract) and by the demo seed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from chefops import cachewrites
from chefops.api.fields import iso_ms
from contracts.models import Contract, ContractStatus, ContractWeekday
from outbox.services import outbox_event_emit
from servicedays import rules
from servicedays.models import ServiceDay, ServiceDayStatus

logger = logging.getLogger("servicedays.jobs")

GENERATE_LOCK_ID = 100001
FALLBACK_LOCK_ID = 100002
DEFAULT_GENERATION_DAYS = rules.UPCOMING_WINDOW_DAYS
SQLITE_BATCH_SIZE = 500
# The ids of the days the generation inserts: time-ordered UUIDs (RFC 9562 version 7: the Unix
# time in ms in the first 48 bits, then the version and random bits of gen_random_uuid()).
# Random (version 4) ids put each of a run's rows on a random leaf page of the primary key
# index; at 10M rows that index outgrows the buffer cache and the daily run for 10,000
# contracts dirtied and logged most of it (8.7 s against 3.9 s with these ids; docs/
# benchmarks.md, "Issue #18: cost as data grows"). Time-ordered ids land on a few pages.
UUID7_SQL = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING "
    "substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) "
    "FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid"
)


def advisory_xact_lock(lock_id: int) -> bool:
    """Try the PostgreSQL transaction-level advisory lock; released at commit/rollback.

    Must run inside ``transaction.atomic()``. Transaction-level (not session-level) locks
    cannot leak on a pooled connection the way the original's did (reference §11 #19).
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock_id])
        row = cursor.fetchone()
    return bool(row and row[0])


# --- Generation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSummary:
    lock_acquired: bool
    active_contracts: int
    inserted: int
    from_date: date
    to_date: date
    duration_ms: int

    def line(self) -> str:
        if not self.lock_acquired:
            return "generate_service_days: skipped, another run holds the lock"
        return (
            f"generate_service_days: {self.active_contracts} active contracts, "
            f"{self.inserted} service days inserted, window {self.from_date.isoformat()}.."
            f"{self.to_date.isoformat()}, {self.duration_ms} ms"
        )


def service_days_generate_upcoming(
    *, days: int = DEFAULT_GENERATION_DAYS, now: datetime | None = None
) -> GenerationSummary:
    """Insert-if-absent the days of every ACTIVE contract for today .. today + ``days`` (UTC),
    on the contract's weekdays and inside its [startDate, endDate]."""
    started = time.monotonic()
    now = now or timezone.now()
    from_date = rules.utc_today(now)
    to_date = from_date + timedelta(days=days)
    with transaction.atomic():
        if not advisory_xact_lock(GENERATE_LOCK_ID):
            summary = GenerationSummary(False, 0, 0, from_date, to_date, 0)
            logger.info(summary.line())
            return summary
        active = Contract.objects.filter(status=ContractStatus.ACTIVE).count()
        inserted = _generate(from_date, to_date, now)
    summary = GenerationSummary(
        True, active, inserted, from_date, to_date, int((time.monotonic() - started) * 1000)
    )
    logger.info(summary.line())
    return summary


def service_days_generate_for_contracts(
    contract_ids: Iterable[uuid.UUID],
    *,
    days: int = DEFAULT_GENERATION_DAYS,
    now: datetime | None = None,
) -> int:
    """The daily generation restricted to these contracts (those of them that are ACTIVE):
    their days of today .. today + ``days`` (UTC), at once instead of at the next midnight.

    Returns how many days were inserted. No advisory lock: it is insert-if-absent on the
    unique (contract, service_date), so it may overlap the daily job or the on-demand API,
    and every writer inserts in (contract, date) order, so overlapping writers wait for each
    other instead of deadlocking.
    """
    started = time.monotonic()
    wanted = sorted(set(contract_ids))
    now = now or timezone.now()
    from_date = rules.utc_today(now)
    to_date = from_date + timedelta(days=days)
    if not wanted:
        return 0
    with transaction.atomic():
        inserted = _generate(from_date, to_date, now, wanted)  # invalidates what it inserts
    # DEBUG: the task's own result line says it (and the demo seed stays quiet).
    logger.debug(
        "generate_service_days for %d contracts: %d service days inserted, window %s..%s, %d ms",
        len(wanted),
        inserted,
        from_date.isoformat(),
        to_date.isoformat(),
        int((time.monotonic() - started) * 1000),
    )
    return inserted


def _generate(
    from_date: date, to_date: date, now: datetime, contract_ids: list[uuid.UUID] | None = None
) -> int:
    if connection.vendor == "postgresql":
        return _generate_postgres(from_date, to_date, now, contract_ids)
    return _generate_batched(from_date, to_date, now, contract_ids)


def _generate_postgres(
    from_date: date, to_date: date, now: datetime, contract_ids: list[uuid.UUID] | None
) -> int:
    """One INSERT … SELECT over contracts x weekdays x the window's dates.

    Rows go in in (contract, date) order, the order of every other writer of new days (the
    per-contract entry point, the on-demand API): two writers that overlap on a contract's
    days then wait on each other's rows in the same order and cannot deadlock.
    """
    day = ServiceDay._meta.db_table
    contract = Contract._meta.db_table
    weekday = ContractWeekday._meta.db_table
    only = "" if contract_ids is None else "AND c.id = ANY(%(ids)s)"
    # Date + integer arithmetic and isodow of a plain date: no time zone is involved anywhere.
    sql = f"""
        INSERT INTO {day} (id, contract_id, service_date, status, created_at, updated_at)
        SELECT {UUID7_SQL}, c.id, d.service_date, %(pending)s, %(now)s, %(now)s
        FROM {contract} c
        JOIN {weekday} w ON w.contract_id = c.id
        JOIN (
            SELECT (%(from)s::date + g) AS service_date
            FROM generate_series(0, %(span)s) AS g
        ) d ON EXTRACT(ISODOW FROM d.service_date) = w.day_of_week
        WHERE c.status = %(active)s
          AND d.service_date >= c.start_date
          AND (c.end_date IS NULL OR d.service_date <= c.end_date)
          {only}
        ORDER BY c.id, d.service_date
        ON CONFLICT (contract_id, service_date) DO NOTHING
    """  # noqa: S608 - table names come from model metadata, values are parameters

    def stale(result: cachewrites.RawWrite) -> None:
        if contract_ids is None:
            cachewrites.service_days_changed(None)  # every contract's days
        else:
            cachewrites.service_days_changed(
                contract_ids, cachewrites.contract_parties(contract_ids)
            )

    params = {
        "pending": ServiceDayStatus.PENDING,
        "active": ContractStatus.ACTIVE,
        "now": now,
        "from": from_date,
        "span": (to_date - from_date).days,
        "ids": contract_ids,
    }
    return max(cachewrites.execute(sql, params, writes=[ServiceDay], stale=stale).rowcount, 0)


def _generate_batched(
    from_date: date, to_date: date, now: datetime, contract_ids: list[uuid.UUID] | None
) -> int:
    """Portable path (SQLite): two reads, then batched insert-if-absent."""
    active = Contract.objects.filter(status=ContractStatus.ACTIVE)
    if contract_ids is not None:
        active = active.filter(pk__in=contract_ids)
    contracts = list(active.values_list("id", "start_date", "end_date"))
    weekdays: dict[uuid.UUID, list[int]] = defaultdict(list)
    for contract_id, dow in ContractWeekday.objects.filter(contract__in=active).values_list(
        "contract_id", "day_of_week"
    ):
        weekdays[contract_id].append(dow)
    window = ServiceDay.objects.filter(service_date__gte=from_date, service_date__lte=to_date)
    if contract_ids is not None:
        window = window.filter(contract_id__in=contract_ids)
    # Only the absent days: the insert makes their contracts' cached reads stale.
    existing = set(window.values_list("contract_id", "service_date"))
    rows = [
        ServiceDay(contract_id=cid, service_date=d, created_at=now, updated_at=now)
        for cid, start, end in contracts
        for d in rules.dates_on_weekdays(
            from_date, to_date, weekdays[cid], start_date=start, end_date=end
        )
        if (cid, d) not in existing
    ]
    if not rows:
        return 0
    ServiceDay.objects.bulk_create(rows, ignore_conflicts=True, batch_size=SQLITE_BATCH_SIZE)
    return window.count() - len(existing)


# --- Fallback ---------------------------------------------------------------------------------


@dataclass
class FallbackSummary:
    lock_acquired: bool
    dry_run: bool
    applied: int = 0
    contracts: int = 0
    duration_ms: int = 0
    days: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        if not self.lock_acquired:
            return "apply_fallback: skipped, another run holds the lock"
        verb = "would apply" if self.dry_run else "applied"
        return (
            f"apply_fallback: {verb} the contract minimum to {self.applied} service days "
            f"of {self.contracts} contracts, {self.duration_ms} ms"
        )


def service_days_apply_fallback(
    *, now: datetime | None = None, dry_run: bool = False
) -> FallbackSummary:
    """Give every day still without an expected quantity past its notice deadline the contract
    minimum (reference §4.5), for ACTIVE contracts; idempotent.

    Emits one ``servicedays.fallback_applied`` event per contract and run, listing its days,
    in the same transaction: a consumer (e-mail to the client) wants one message per contract,
    and an hourly run over thousands of contracts stays one insert per contract, not per day.
    """
    started = time.monotonic()
    now = now or timezone.now()
    with transaction.atomic():
        if not advisory_xact_lock(FALLBACK_LOCK_ID):
            summary = FallbackSummary(lock_acquired=False, dry_run=dry_run)
            logger.info(summary.line())
            return summary
        if connection.vendor == "postgresql":
            rows = _fallback_postgres(now, dry_run=dry_run)
        else:
            rows = _fallback_portable(now, dry_run=dry_run)
        by_contract: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_contract[row["contract_id"]].append(row)
        if not dry_run:
            for contract_id, days in by_contract.items():
                first = days[0]
                outbox_event_emit(
                    event_type="servicedays.fallback_applied",
                    aggregate_type="Contract",
                    aggregate_id=contract_id,
                    payload={
                        "contractId": contract_id,
                        "cateringCompanyId": first["catering_company_id"],
                        "clientCompanyId": first["client_company_id"],
                        "appliedQuantity": first["applied_quantity"],
                        "appliedAt": iso_ms(now),
                        "serviceDays": [
                            {"serviceDayId": d["service_day_id"], "serviceDate": d["service_date"]}
                            for d in sorted(days, key=lambda d: d["service_date"])
                        ],
                    },
                )
    summary = FallbackSummary(
        lock_acquired=True,
        dry_run=dry_run,
        applied=len(rows),
        contracts=len(by_contract),
        duration_ms=int((time.monotonic() - started) * 1000),
        days=rows,
    )
    logger.info(summary.line())
    return summary


def _fallback_row(
    day_id: Any, contract_id: Any, service_date: date, quantity: int, catering: Any, client: Any
) -> dict[str, Any]:
    return {
        "service_day_id": str(day_id),
        "contract_id": str(contract_id),
        "service_date": service_date.isoformat(),
        "applied_quantity": quantity,
        "catering_company_id": str(catering),
        "client_company_id": str(client),
    }


def _fallback_postgres(now: datetime, *, dry_run: bool) -> list[dict[str, Any]]:
    """One UPDATE … FROM … RETURNING. Under READ COMMITTED a row that a client confirmed
    meanwhile is re-checked after its lock is released, so a fresh confirmation always wins."""
    day = ServiceDay._meta.db_table
    contract = Contract._meta.db_table
    # deadline <= now  <=>  service_date <= date(now + notice hours), all in UTC.
    eligible = """
        sd.contract_id = c.id
        AND c.status = %(active)s
        AND sd.status = %(pending)s
        AND sd.expected_quantity IS NULL
        AND sd.expected_confirmed_at IS NULL
        AND sd.service_date <= (
            (%(now)s::timestamptz AT TIME ZONE 'UTC') + c.notice_period_hours * INTERVAL '1 hour'
        )::date
    """
    returning = "sd.id, sd.contract_id, sd.service_date, c.min_daily_quantity, "
    returning += "c.catering_company_id, c.client_company_id"
    if dry_run:
        sql = f"SELECT {returning} FROM {day} sd, {contract} c WHERE {eligible}"  # noqa: S608
    else:
        sql = f"""
            UPDATE {day} sd
            SET expected_quantity = c.min_daily_quantity,
                expected_confirmed_at = %(now)s,
                updated_at = %(now)s
            FROM {contract} c
            WHERE {eligible}
            RETURNING {returning}
        """  # noqa: S608 - table names come from model metadata, values are parameters
    params: dict[str, Any] = {
        "active": ContractStatus.ACTIVE,
        "pending": ServiceDayStatus.PENDING,
        "now": now,
    }
    if dry_run:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [_fallback_row(*row) for row in cursor.fetchall()]

    def stale(result: cachewrites.RawWrite) -> None:
        # RETURNING: the updated days' contracts and their parties
        cachewrites.service_days_changed(
            {row[1] for row in result.rows}, {c for row in result.rows for c in row[4:6]}
        )

    written = cachewrites.execute(sql, params, writes=[ServiceDay], fetch=True, stale=stale)
    return [_fallback_row(*row) for row in written.rows]


def _fallback_portable(now: datetime, *, dry_run: bool) -> list[dict[str, Any]]:
    """SQLite: the rule is applied per distinct notice period (a handful of values), so it
    is still a fixed number of set-based statements, not one per day."""
    pending = ServiceDay.objects.filter(
        status=ServiceDayStatus.PENDING,
        expected_quantity__isnull=True,
        expected_confirmed_at__isnull=True,
        contract__status=ContractStatus.ACTIVE,
    )
    notice_periods = (
        Contract.objects.filter(status=ContractStatus.ACTIVE)
        .values_list("notice_period_hours", flat=True)
        .distinct()
        .order_by()
    )
    rows: list[dict[str, Any]] = []
    for hours in notice_periods:
        due = pending.filter(
            contract__notice_period_hours=hours,
            service_date__lte=rules.latest_due_service_date(now, hours),
        )
        found = list(
            due.values_list(
                "id",
                "contract_id",
                "service_date",
                "contract__min_daily_quantity",
                "contract__catering_company_id",
                "contract__client_company_id",
            )
        )
        rows.extend(_fallback_row(*r) for r in found)
        if dry_run or not found:
            continue
        minimums: dict[int, list[uuid.UUID]] = defaultdict(list)
        for day_id, _cid, _d, minimum, _cat, _cli in found:
            minimums[minimum].append(day_id)
        for minimum, ids in minimums.items():
            for start in range(0, len(ids), SQLITE_BATCH_SIZE):
                pending.filter(pk__in=ids[start : start + SQLITE_BATCH_SIZE]).update(
                    expected_quantity=minimum, expected_confirmed_at=now, updated_at=now
                )
    return rows
