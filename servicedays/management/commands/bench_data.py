"""Load the benchmark data set (SPEC §6): companies, users, contracts and service days.

Only for a throw-away PostgreSQL database whose name contains "bench". Companies, users and
contracts go in with large bulk inserts; the service days are produced server-side by one
INSERT … SELECT (no rows travel through Python), with the secondary indexes rebuilt after.

Shape of the data (so benchmarks can pick meaningful callers):
- companies: the first half caterings ``bench-catering-<i>@bench.example.com``, the rest clients
  ``bench-client-<i>@bench.example.com``; each has one ADMIN user with that e-mail and the
  password ``BENCH_PASSWORD`` (one precomputed hash, reused);
- contracts, Mon-Fri: ``--contracts`` ACTIVE ones, catering 0 has 100 (clients 0-99), client 0
  has 50 (caterings 0-49), the rest spread over the other pairs; then ``--past-contracts``
  TERMINATED ones (tenants that left, their history kept) on further pairs, never catering 0's
  or client 0's, each ended on a weekday of the last year;
- service days: on the weekdays before today (so today's generation window is still empty),
  CONFIRMED with deterministic quantities; the same number per contract, except that the
  measured contracts (catering 0's and client 0's) get at least ``MEASURED_MIN_WEEKDAYS``, so
  the benchmarked reads (30-day range, last week's report, this and last month's finance
  metrics) see full windows at every size (bench/data_scale.py loads 100k to 10M days).
  ``--date-order`` inserts them date by date, oldest first, as the daily generation job does
  (a contract's days spread over the table, one per day's batch); the default keeps each
  contract's days together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from chefops import cachewrites
from companies.models import (
    CateringProfile,
    ClientProfile,
    Company,
    CompanyType,
    Role,
    User,
    WorkMode,
)
from contracts.models import Contract, ContractStatus, ContractWeekday
from servicedays import month_totals
from servicedays.models import ServiceDay, ServiceDayStatus

BENCH_PASSWORD = "bench-password-2026"  # noqa: S105 - a throw-away benchmark database only
EMAIL_DOMAIN = "bench.example.com"
BIG_CATERER_CONTRACTS = 100
BIG_CLIENT_CONTRACTS = 50
BATCH = 5000
# Weekdays of history the measured contracts get at least: the previous month starts at most
# ~23 weekdays back, so 50 (10 weeks) covers every window the benchmarked reads look at.
MEASURED_MIN_WEEKDAYS = 50
# A TERMINATED contract of the data set ended on one of the last PAST_END_SPREAD weekdays.
PAST_END_SPREAD = 260


@dataclass(frozen=True)
class DaysLayout:
    """Where each contract's days go: contract i has counts[i] days on the weekdays numbered
    newest[i] .. newest[i] + counts[i] - 1 of ``dates`` (1 = the last weekday before today)."""

    contract_ids: list[Any]
    newest: list[int]
    counts: list[int]
    dates: list[date]


def catering_email(index: int) -> str:
    return f"bench-catering-{index}@{EMAIL_DOMAIN}"


def client_email(index: int) -> str:
    return f"bench-client-{index}@{EMAIL_DOMAIN}"


def contract_pairs(caterers: int, clients: int, total: int) -> list[tuple[int, int]]:
    """(catering index, client index) pairs, unique, with the two "big" tenants first."""
    pairs: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()

    def add(pair: tuple[int, int]) -> None:
        if pair not in seen and len(pairs) < total:
            seen.add(pair)
            pairs.append(pair)

    for client in range(min(BIG_CATERER_CONTRACTS, clients)):
        add((0, client))
    for caterer in range(min(BIG_CLIENT_CONTRACTS, caterers)):
        add((caterer, 0))
    # The rest: walk the other pairs diagonal by diagonal so load spreads evenly.
    step = 0
    while len(pairs) < total and step < caterers * clients:
        caterer = 1 + step % max(caterers - 1, 1)
        client = 1 + (step // max(caterers - 1, 1) + step) % max(clients - 1, 1)
        add((caterer, client))
        step += 1
    if len(pairs) < total:
        raise CommandError(f"{caterers} x {clients} companies cannot hold {total} contracts")
    return pairs


def is_measured(pair: tuple[int, int]) -> bool:
    """A contract of the tenants the benchmarks read as: catering 0 or client 0."""
    return pair[0] == 0 or pair[1] == 0


def days_per_contract(measured: list[bool], total: int, minimum: int) -> list[int]:
    """How many days each contract gets: ``total`` split evenly, except that the measured
    contracts get at least ``minimum`` each (while ``total`` allows) and the others share
    what remains; remainders go to the first contracts that share."""
    count, big = len(measured), sum(measured)
    if big in (0, count):
        base, extra = divmod(total, count)
        return [base + (1 if i < extra else 0) for i in range(count)]
    depth = min(max(minimum, total // count), total // big)
    base, extra = divmod(total - depth * big, count - big)
    out: list[int] = []
    shared = 0
    for flag in measured:
        if flag:
            out.append(depth)
        else:
            out.append(base + (1 if shared < extra else 0))
            shared += 1
    return out


def weekdays_before(today: date, count: int) -> list[date]:
    out: list[date] = []
    day = today - timedelta(days=1)
    while len(out) < count:
        if day.isoweekday() <= 5:
            out.append(day)
        day -= timedelta(days=1)
    return out


class Command(BaseCommand):
    help = "Load the benchmark data set into a PostgreSQL database named *bench* (see module doc)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--companies", type=int, default=1000)
        parser.add_argument("--contracts", type=int, default=10000)
        parser.add_argument("--service-days", type=int, default=1000000)
        parser.add_argument(
            "--past-contracts",
            type=int,
            default=0,
            help="TERMINATED contracts beside the ACTIVE ones, with their history",
        )
        parser.add_argument(
            "--date-order",
            action="store_true",
            help="insert the service days date by date (oldest first), as the daily job does",
        )
        parser.add_argument(
            "--if-missing", action="store_true", help="Do nothing if a bench data set is loaded."
        )
        parser.add_argument(
            "--reset", action="store_true", help="Wipe companies, contracts and service days first."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = str(settings.DATABASES["default"]["NAME"])
        if connection.vendor != "postgresql" or "bench" not in name:
            raise CommandError(
                "bench_data needs a PostgreSQL database whose name contains 'bench' "
                f"(this is {connection.vendor} {name!r}); it loads a million rows"
            )
        companies, contracts = options["companies"], options["contracts"]
        service_days, past = options["service_days"], options["past_contracts"]
        if companies < 2 or contracts < 1 or service_days < 0 or past < 0:
            raise CommandError("need at least 2 companies and 1 contract")
        present = Company.objects.filter(email=client_email(0)).exists()
        if present and options["if_missing"]:
            self.stdout.write("bench_data: data set already present, nothing to do")
            return
        if present and not options["reset"]:
            raise CommandError("a bench data set is already loaded: pass --reset or --if-missing")

        started = time.monotonic()
        timings: dict[str, float] = {}
        with transaction.atomic():
            if options["reset"]:
                self._wipe()
            mark = time.monotonic()
            company_ids = self._companies(companies)
            timings["companies+users"] = time.monotonic() - mark
            mark = time.monotonic()
            layout = self._contracts(company_ids, contracts, past, service_days)
            timings["contracts"] = time.monotonic() - mark
            mark = time.monotonic()
            inserted = self._service_days(layout, date_order=options["date_order"])
            timings["service days"] = time.monotonic() - mark
        mark = time.monotonic()
        with connection.cursor() as cursor:
            for model in (Company, User, Contract, ContractWeekday, ServiceDay):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
        timings["analyze"] = time.monotonic() - mark
        detail = ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
        self.stdout.write(
            f"bench_data: {companies} companies, {contracts} active and {past} terminated "
            f"contracts, {inserted} "
            f"service days in {time.monotonic() - started:.1f}s ({detail}); "
            f"logins {client_email(0)} / {catering_email(0)}, password {BENCH_PASSWORD}"
        )

    def _wipe(self) -> None:
        tables = [
            ServiceDay._meta.db_table,
            ContractWeekday._meta.db_table,
            Contract._meta.db_table,
            Company._meta.db_table,
        ]
        # CASCADE also empties users, profiles and token tables that point at companies; the
        # helper makes every cached read and principal stale.
        cachewrites.execute(
            f"TRUNCATE {', '.join(tables)} CASCADE",
            [],
            writes=[ServiceDay, ContractWeekday, Contract, Company, User],
        )

    def _companies(self, count: int) -> dict[str, list[Any]]:
        caterers = count // 2
        clients = count - caterers
        password = make_password(BENCH_PASSWORD)  # one hash for every user: loading stays fast
        rows = [
            Company(
                company_type=CompanyType.CATERING,
                name=f"Bench Catering {i}",
                email=catering_email(i),
                tax_id=f"BC-{i:08d}",
            )
            for i in range(caterers)
        ] + [
            Company(
                company_type=CompanyType.CLIENT,
                name=f"Bench Client {i}",
                email=client_email(i),
                tax_id=f"BL-{i:08d}",
            )
            for i in range(clients)
        ]
        Company.objects.bulk_create(rows, batch_size=BATCH)
        CateringProfile.objects.bulk_create(
            [CateringProfile(company=c, daily_capacity=500) for c in rows[:caterers]],
            batch_size=BATCH,
        )
        ClientProfile.objects.bulk_create(
            [ClientProfile(company=c, work_mode=WorkMode.HYBRID) for c in rows[caterers:]],
            batch_size=BATCH,
        )
        User.objects.bulk_create(
            [
                User(
                    email=c.email,
                    name=f"Admin of {c.name}",
                    role=Role.ADMIN,
                    company=c,
                    password=password,
                )
                for c in rows
            ],
            batch_size=BATCH,
        )
        return {
            "caterers": [c.pk for c in rows[:caterers]],
            "clients": [c.pk for c in rows[caterers:]],
        }

    def _contracts(
        self, companies: dict[str, list[Any]], active: int, past: int, service_days: int
    ) -> DaysLayout:
        caterers, clients = companies["caterers"], companies["clients"]
        pairs = contract_pairs(len(caterers), len(clients), active + past)
        if any(is_measured(pair) for pair in pairs[active:]):
            raise CommandError("too few contracts for the measured tenants' 150 ACTIVE ones")
        counts = days_per_contract(
            [is_measured(pair) for pair in pairs], service_days, MEASURED_MIN_WEEKDAYS
        )
        # Weekday number k (1 = the last weekday before today) of each contract's newest day:
        # 1 for the ACTIVE ones, a weekday of the last year for the TERMINATED ones.
        newest = [1] * active + [2 + j % PAST_END_SPREAD for j in range(past)]
        dates = weekdays_before(
            timezone.now().date(),
            max(k + max(n, 1) - 1 for k, n in zip(newest, counts, strict=True)),
        )
        start = timezone.now().date() - timedelta(days=400)
        contracts = []
        for n, (cat, cli) in enumerate(pairs):
            oldest = dates[newest[n] + counts[n] - 2] if counts[n] else dates[newest[n] - 1]
            contracts.append(
                Contract(
                    catering_company_id=caterers[cat],
                    client_company_id=clients[cli],
                    start_date=min(start, oldest),
                    end_date=None if n < active else dates[newest[n] - 1],
                    price_per_service=Decimal("10.00") + Decimal("0.25") * (n % 20),
                    flexible_quantity=True,
                    min_daily_quantity=10,
                    max_daily_quantity=100,
                    notice_period_hours=24,
                    status=ContractStatus.ACTIVE if n < active else ContractStatus.TERMINATED,
                )
            )
        Contract.objects.bulk_create(contracts, batch_size=BATCH)
        ContractWeekday.objects.bulk_create(
            [ContractWeekday(contract=c, day_of_week=d) for c in contracts for d in range(1, 6)],
            batch_size=BATCH,
        )
        return DaysLayout([c.pk for c in contracts], newest, counts, dates)

    def _service_days(self, layout: DaysLayout, *, date_order: bool) -> int:
        if sum(layout.counts) == 0:
            return 0
        table = ServiceDay._meta.db_table
        now = timezone.now()
        with connection.cursor() as cursor:
            # Building keys and indexes once over the loaded rows is several times faster than
            # maintaining them (and a deferred FK check per row) during a million inserts.
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') "
                "ORDER BY CASE contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 ELSE 2 END",
                [table],
            )
            constraints = cursor.fetchall()
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
                "AND NOT (indexname = ANY(%s))",
                [table, [name for name, _ in constraints]],
            )
            indexes = cursor.fetchall()
            # Deferred checks of the contracts just inserted must fire before DDL touches
            # contracts_contract (dropping the foreign key that references it).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # The monthly sums: one rebuild at the end instead of the insert trigger's upserts
            # per statement (with --date-order, one per date: a million row updates at 1M).
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {month_totals.INSERT_TRIGGER}")
            for index_name, _definition in indexes:
                cursor.execute(f'DROP INDEX "{index_name}"')
            for constraint_name, _definition in reversed(constraints):
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint_name}"')
            # Contract number rn (1-based, in creation order) has its days on weekday numbers
            # k = newest .. newest + count - 1 (1 = the last weekday before today). Quantities
            # depend on (rn, k) only: the same contract has the same days at every size.
            sql = f"""
                INSERT INTO {table} (id, contract_id, service_date, expected_quantity,
                    served_quantity, expected_confirmed_at, served_confirmed_at, status,
                    created_at, updated_at)
                SELECT gen_random_uuid(), p.id, d.day, q.expected, q.served,
                       d.day - INTERVAL '30 hours', d.day + INTERVAL '15 hours',
                       %(confirmed)s, %(now)s, %(now)s
                FROM unnest(%(ids)s::uuid[], %(newest)s::int[], %(counts)s::int[])
                     WITH ORDINALITY AS p(id, newest, n, rn)
                CROSS JOIN LATERAL generate_series(
                    GREATEST(p.newest, %(k_low)s), LEAST(p.newest + p.n - 1, %(k_high)s)
                ) AS g(k)
                CROSS JOIN LATERAL (SELECT (%(dates)s::date[])[g.k] AS day) d
                CROSS JOIN LATERAL (
                    SELECT 10 + ((p.rn * 31 + g.k * 17) %% 91)::int AS expected,
                           10 + ((p.rn * 31 + g.k * 17 + (g.k %% 7) * 5) %% 91)::int AS served
                ) q
                """
            params: dict[str, Any] = {
                "confirmed": ServiceDayStatus.CONFIRMED,
                "now": now,
                "ids": layout.contract_ids,
                "newest": layout.newest,
                "counts": layout.counts,
                "dates": layout.dates,
            }
            # One statement for all; or one per date, oldest first (the heap then holds the
            # days date by date, as years of daily generation leave them).
            spans = (
                [(k, k) for k in range(len(layout.dates), 0, -1)]
                if date_order
                else [(1, len(layout.dates))]
            )
            inserted = 0
            for k_low, k_high in spans:
                cursor.execute(sql, {**params, "k_low": k_low, "k_high": k_high})
                inserted += cursor.rowcount
            # Index builds sort millions of rows: give them memory (this transaction only).
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            for constraint_name, definition in constraints:
                cursor.execute(
                    f'ALTER TABLE {table} ADD CONSTRAINT "{constraint_name}" {definition}'
                )
            for _index_name, definition in indexes:
                cursor.execute(definition)
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {month_totals.INSERT_TRIGGER}")
            month_totals.rebuild(cursor)
        return int(inserted)
