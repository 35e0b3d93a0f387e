"""Retention purges under a controlled clock: right age, archives complete, restore equal."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core import serializers
from django.core.management import CommandError, call_command
from django.db.models import Model

from chefops.ops import retention
from chefops.ops.jobs import job_last_success
from chefops.ops.retention_tasks import retention_purge
from chefops.testing.factories import (
    TEST_PASSWORD,
    CateringFactory,
    ClientFactory,
    ContractFactory,
    UserFactory,
)
from companies.handlers import password_reset_email
from companies.models import (
    AuthSession,
    CateringProfile,
    ClientOfficeDay,
    Company,
    OneTimeToken,
    RefreshToken,
    User,
)
from companies.services import auth_forgot_password, auth_login
from contracts.models import Contract, ContractWeekday
from outbox.models import EventStatus, OutboxEvent, ProcessedEvent
from servicedays.models import ServiceDay

# Microseconds on purpose: archives must keep them (DjangoJSONEncoder alone would not).
T0 = datetime(2026, 1, 10, 9, 0, 0, 123456, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _dirs(settings: Any, tmp_path: Path) -> None:
    settings.ARCHIVE_DIR = tmp_path / "archive"
    settings.RUN_DIR = tmp_path / "run"


def _run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def _snapshot(*querysets: Any) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for qs in querysets:
        for obj in serializers.serialize("python", qs):
            rows[(obj["model"], str(obj["pk"]))] = obj["fields"]
    return rows


def _world() -> dict[str, Any]:
    """Deleted caterer with users, tokens, two contracts (one with a live client) and days;
    plus an unrelated live pair that must survive every purge."""
    with time_machine.travel(T0 - timedelta(days=60), tick=False):
        doomed = CateringFactory.create()
        live_client = ClientFactory.create()
        admin = UserFactory.create(company=doomed, email="boss@doomed.example")
        UserFactory.create(company=doomed)
        auth_login(email=admin.email, password=TEST_PASSWORD, remember_me=True)
        auth_forgot_password(email=admin.email)
        # what the dispatcher does next: the reset handler issues the user's token
        password_reset_email(OutboxEvent.objects.get(event_type="auth.password_reset_requested"))
        contract = ContractFactory.create(catering_company=doomed, client_company=live_client)
        for offset in range(3):
            ServiceDay.objects.create(
                contract=contract, service_date=date(2025, 12, 1) + timedelta(days=offset)
            )
        other_client = ClientFactory.create()
        ContractFactory.create(
            catering_company=doomed, client_company=other_client, status="PAUSED"
        )
        keeper = CateringFactory.create()
        kept_contract = ContractFactory.create(catering_company=keeper, client_company=live_client)
        ServiceDay.objects.create(contract=kept_contract, service_date=date(2025, 12, 1))
        UserFactory.create(company=keeper)
    Company.objects.filter(pk=doomed.pk).update(status="INACTIVE", deleted_at=T0)
    return {
        "doomed": doomed,
        "live_client": live_client,
        "keeper": keeper,
        "kept_contract": kept_contract,
    }


def _doomed_rows(doomed: Company) -> dict[tuple[str, str], dict[str, Any]]:
    contracts = Contract.objects.filter(catering_company=doomed)
    users = User.objects.filter(company=doomed)
    return _snapshot(
        Company.objects.filter(pk=doomed.pk),
        CateringProfile.objects.filter(company=doomed),
        users,
        AuthSession.objects.filter(user__in=users),
        RefreshToken.objects.filter(session__user__in=users),
        OneTimeToken.objects.filter(user__in=users),
        contracts,
        ContractWeekday.objects.filter(contract__in=contracts),
        ServiceDay.objects.filter(contract__in=contracts),
    )


def _counts() -> dict[str, int]:
    models: list[type[Model]] = [
        Company,
        CateringProfile,
        ClientOfficeDay,
        User,
        AuthSession,
        RefreshToken,
        OneTimeToken,
        Contract,
        ContractWeekday,
        ServiceDay,
        OutboxEvent,
        ProcessedEvent,
    ]
    return {m._meta.label: m._default_manager.count() for m in models}


# --- deleted companies ----------------------------------------------------------------------


def test_a_deleted_company_is_kept_29_days_then_archived_removed_and_restored_equal() -> None:
    world = _world()
    doomed = world["doomed"]
    before = _doomed_rows(doomed)
    # 1 company, 1 profile, 2 users, 1 session, 1 refresh, 1 one-time, 2 contracts,
    # 6 weekdays, 3 service days
    assert len(before) == 18

    with time_machine.travel(T0 + timedelta(days=29), tick=False):
        result = retention.deleted_companies_purge()
    assert result.companies == 0
    assert Company.objects.filter(pk=doomed.pk).exists()

    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        result = retention.deleted_companies_purge()
    assert (result.companies, result.rows) == (1, 18)
    name = f"companies/2026-02-10/{doomed.pk}.jsonl.gz"
    assert result.files == [name]
    assert not Company.objects.filter(pk=doomed.pk).exists()
    assert not User.objects.filter(company_id=doomed.pk).exists()
    assert not Contract.objects.filter(catering_company_id=doomed.pk).exists()
    assert _doomed_rows(doomed) == {}
    # The other parties and their unrelated contract stay.
    assert Company.objects.filter(pk=world["live_client"].pk).exists()
    assert Contract.objects.filter(pk=world["kept_contract"].pk).exists()
    assert ServiceDay.objects.filter(contract=world["kept_contract"]).count() == 1

    path = Path(retention.archive_storage().path(name))
    with gzip.open(path, "rt") as fh:
        archived = [json.loads(line) for line in fh]
    assert {(o["model"], str(o["pk"])) for o in archived} == set(before)

    out = _run("archive", "restore", name)
    assert out.startswith(f"restored 18 row(s) from {name}")
    assert _doomed_rows(doomed) == before

    with pytest.raises(CommandError, match="already exist"):
        _run("archive", "restore", str(path))
    assert _doomed_rows(doomed) == before


def test_a_purged_company_can_log_in_again_after_restore() -> None:
    world = _world()
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        retention.deleted_companies_purge()
        name = retention.company_archive_name(world["doomed"].pk, (T0 + timedelta(days=31)).date())
    call_command("archive", "restore", name)
    user = User.objects.get(email="boss@doomed.example")
    assert user.check_password(TEST_PASSWORD)
    assert user.company_id == world["doomed"].pk


def test_dry_run_changes_nothing_and_reports_what_would_go() -> None:
    world = _world()
    before = _counts()
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        out = _run("purge_deleted_companies", "--dry-run")
        summary = _run("retention_purge", "--dry-run")
    assert out == "purge_deleted_companies: would archive and delete 1 company(ies), 18 row(s)"
    assert summary.startswith("retention_purge (dry run): would remove 1 company(ies) (18 rows)")
    assert _counts() == before
    assert Company.objects.filter(pk=world["doomed"].pk).exists()
    assert retention.archive_files() == []


def test_a_deleted_client_takes_its_contracts_with_a_live_caterer_along() -> None:
    with time_machine.travel(T0 - timedelta(days=60), tick=False):
        caterer = CateringFactory.create()
        client = ClientFactory.create(office_days=[2, 4])
        contract = ContractFactory.create(catering_company=caterer, client_company=client)
        ServiceDay.objects.create(contract=contract, service_date=date(2025, 12, 2))
    Company.objects.filter(pk=client.pk).update(status="INACTIVE", deleted_at=T0)
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        result = retention.deleted_companies_purge()
    # company, client profile, 2 office days, contract, 3 weekdays, 1 service day
    assert (result.companies, result.rows) == (1, 9)
    assert not Contract.objects.filter(pk=contract.pk).exists()
    assert not ClientOfficeDay.objects.filter(company_id=client.pk).exists()
    assert Company.objects.filter(pk=caterer.pk).exists()
    call_command("archive", "restore", result.files[0])
    assert list(
        ClientOfficeDay.objects.filter(company_id=client.pk).values_list("day_of_week", flat=True)
    ) == [2, 4]
    assert ServiceDay.objects.filter(contract_id=contract.pk).count() == 1


def test_undeleted_companies_are_never_purged() -> None:
    world = _world()
    Company.objects.filter(pk=world["doomed"].pk).update(status="ACTIVE", deleted_at=None)
    with time_machine.travel(T0 + timedelta(days=400), tick=False):
        assert retention.deleted_companies_purge().companies == 0


def test_restore_refuses_a_missing_or_corrupt_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="archive not found"):
        _run("archive", "restore", "companies/2026-01-01/nope.jsonl.gz")
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(CommandError, match="not a readable archive"):
        _run("archive", "restore", str(bad))


# --- outbox ---------------------------------------------------------------------------------


def _event(status: str, processed_at: datetime | None, n: int) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type="test.event",
        aggregate_type="test",
        aggregate_id=str(n),
        payload={"n": n, "text": "é"},
        status=status,
        created_at=T0 - timedelta(days=1),
        processed_at=processed_at,
    )


def test_processed_events_are_archived_and_deleted_after_30_days_dead_ones_kept() -> None:
    OutboxEvent.objects.all().delete()
    processed = [
        _event(EventStatus.PROCESSED, T0 + timedelta(seconds=i % 3, microseconds=7 * i), i)
        for i in range(7)
    ]
    newer = _event(EventStatus.PROCESSED, T0 + timedelta(days=2), 100)
    dead = _event(EventStatus.DEAD, T0, 101)
    pending = _event(EventStatus.PENDING, None, 102)
    ProcessedEvent.objects.create(event_id=processed[0].pk, handler_name="h", processed_at=T0)
    fresh_ledger = ProcessedEvent.objects.create(
        event_id=newer.pk, handler_name="h", processed_at=T0 + timedelta(days=2)
    )
    before = _snapshot(OutboxEvent.objects.filter(pk__in=[e.pk for e in processed]))

    with time_machine.travel(T0 + timedelta(days=29), tick=False):
        result = retention.outbox_events_purge(batch_size=3)
    assert (result.events, result.ledger_rows) == (0, 0)
    assert OutboxEvent.objects.count() == 10

    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        dry = retention.outbox_events_purge(dry_run=True)
        assert (dry.events, dry.ledger_rows) == (7, 1)
        assert OutboxEvent.objects.count() == 10
        out = _run("purge_outbox_events", "--batch-size", "3")
    assert out.startswith(
        "purge_outbox_events: archived and deleted 7 processed event(s), deleted 1 ledger row(s) "
        "in 3 batch(es)"
    )
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {newer.pk, dead.pk, pending.pk}
    assert list(ProcessedEvent.objects.values_list("pk", flat=True)) == [fresh_ledger.pk]

    path = Path(retention.archive_storage().path("outbox/2026-02-10.jsonl.gz"))
    with gzip.open(path, "rt") as fh:  # three gzip members read as one stream
        archived = [json.loads(line) for line in fh]
    assert len(archived) == 7
    # Every archived row deserializes back to the same field values.
    objs = [d.object for d in serializers.deserialize("python", archived)]
    assert _snapshot(objs) == before


# --- archives -------------------------------------------------------------------------------


def test_archives_are_deleted_after_one_year_not_before() -> None:
    _world()
    OutboxEvent.objects.all().delete()
    _event(EventStatus.PROCESSED, T0, 1)
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        retention.deleted_companies_purge()
        retention.outbox_events_purge()
    names = sorted(a.name for a in retention.archive_files())
    assert len(names) == 2
    listing = _run("archive", "list")
    assert listing.endswith("2 archive(s)")

    archived_on = T0 + timedelta(days=31)
    with time_machine.travel(archived_on + timedelta(days=364), tick=False):
        assert _run("purge_archives") == (
            "purge_archives: deleted 0 archive(s) older than 365 days, 0 byte(s)"
        )
    assert len(retention.archive_files()) == 2
    with time_machine.travel(archived_on + timedelta(days=366), tick=False):
        dry = _run("purge_archives", "--dry-run")
        assert dry.startswith("purge_archives: would delete 2 archive(s)")
        assert len(retention.archive_files()) == 2
        out = _run("purge_archives")
    assert out.startswith("purge_archives: deleted 2 archive(s) older than 365 days")
    assert retention.archive_files() == []


# --- the daily run --------------------------------------------------------------------------


def test_the_daily_task_runs_every_step_and_records_its_success() -> None:
    world = _world()
    OutboxEvent.objects.all().delete()
    _event(EventStatus.PROCESSED, T0, 1)
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        summary = retention_purge.apply().get()
        assert job_last_success("retention_purge") == T0 + timedelta(days=31)
    assert summary.startswith(
        "retention_purge: removed 1 company(ies) (18 rows), 1 outbox event(s)"
    )
    assert not Company.objects.filter(pk=world["doomed"].pk).exists()
    assert "expired token/session row(s)" in summary


def test_expired_tokens_are_deleted_by_the_daily_run() -> None:
    with time_machine.travel(T0, tick=False):
        user = UserFactory.create()
        auth_login(email=user.email, password=TEST_PASSWORD)
    assert AuthSession.objects.filter(user=user).exists()
    with time_machine.travel(T0 + timedelta(days=60), tick=False):
        dry = retention.expired_tokens_purge(dry_run=True)
        assert dry["sessions"] == 1
        assert AuthSession.objects.filter(user=user).exists()
        _run("retention_purge")
    assert not AuthSession.objects.filter(user=user).exists()
    assert not RefreshToken.objects.filter(session__user=user).exists()


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(CommandError, match="at least 1"):
        _run("purge_outbox_events", "--batch-size", "0")


def test_a_second_run_is_skipped_while_one_holds_the_lease() -> None:
    # The lease is a row (chefops/ops/joblocks.py), not a session-level advisory lock: it holds
    # behind PgBouncer in transaction mode, and on SQLite too.
    from chefops.ops.joblocks import acquire_lease, release_lease
    from chefops.ops.retention_tasks import JOB, LEASE_TTL

    assert acquire_lease(JOB, "another-worker", LEASE_TTL)
    assert retention_purge.apply().get() == ("retention_purge: skipped, another run in progress")
    with pytest.raises(CommandError, match="holds the lock"):
        _run("retention_purge")
    release_lease(JOB, "another-worker")
    assert retention_purge.apply().get().startswith("retention_purge: removed")


def test_a_dead_holders_lease_expires() -> None:
    from chefops.ops.joblocks import acquire_lease
    from chefops.ops.retention_tasks import JOB, LEASE_TTL

    with time_machine.travel(T0, tick=False):
        assert acquire_lease(JOB, "a-worker-that-died", LEASE_TTL)
    with time_machine.travel(T0 + LEASE_TTL - timedelta(seconds=1), tick=False):
        assert retention_purge.apply().get().endswith("another run in progress")
    with time_machine.travel(T0 + LEASE_TTL, tick=False):
        assert retention_purge.apply().get().startswith("retention_purge: removed")


def test_the_daily_task_runs_once_a_day_and_the_command_whenever_asked() -> None:
    # Two beats by mistake enqueue the daily task twice: the second copy does nothing.
    with time_machine.travel(T0, tick=False):
        assert retention_purge.apply().get().startswith("retention_purge: removed")
    with time_machine.travel(T0 + timedelta(hours=14, minutes=59), tick=False):  # 23:59
        assert retention_purge.apply().get() == (
            "retention_purge: skipped, this period's run already happened"
        )
        assert _run("retention_purge").startswith("retention_purge: removed")
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        assert retention_purge.apply().get().startswith("retention_purge: removed")
