"""backup / restore / restore_table against the real PostgreSQL (the pytest test database).

These tests dump and restore the test database itself, so they are transactional
(`transaction=True`): pytest-django empties the tables afterwards.
"""

from __future__ import annotations

import os
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from chefops.testing.cast import make_cast
from companies.models import Company, User
from outbox.models import EventStatus, OutboxEvent, ProcessedEvent


def _fingerprint() -> dict[str, tuple[int, str]]:
    """Row count and md5 of every row (ordered) for each table of the database."""
    result = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT COUNT(*), md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {quoted} t"
            )
            count, digest = cursor.fetchone()
            result[table] = (int(count), str(digest))
    return result


def _event(aggregate_id: str, payload: dict[str, Any] | None = None) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type="contract.created",
        aggregate_type="contract",
        aggregate_id=aggregate_id,
        payload=payload or {"n": aggregate_id, "text": "línea 1\nlínea 2\t\\ fin"},
        status=EventStatus.PROCESSED,
    )


def _backup(folder: Path) -> Path:
    out = StringIO()
    call_command("backup", "--dir", str(folder), stdout=out)
    match = re.match(r"^backup (\S+) \(.*?, (\d+) bytes\)", out.getvalue())
    assert match, out.getvalue()
    path = Path(match.group(1))
    assert path.is_file() and path.stat().st_size == int(match.group(2)) > 0
    assert re.fullmatch(r"chefops-\d{8}T\d{6}Z(-\d+)?\.dump", path.name)
    return path


def _restore_table(path: Path, table: str, *extra: str) -> str:
    out = StringIO()
    call_command("restore_table", str(path), "--table", table, *extra, stdout=out)
    return out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_backup_then_restore_gives_back_every_row_of_every_table(
    tmp_path: Path, settings: Any
) -> None:
    from django.core.cache import cache

    from chefops import readcache

    settings.READ_CACHE_SECONDS = 300
    cast = make_cast()
    for n in range(5):
        _event(f"c{n}")
    ProcessedEvent.objects.create(
        event_id=OutboxEvent.objects.get(aggregate_id="c0").pk, handler_name="audit"
    )
    before = _fingerprint()
    assert before["companies_user"][0] == 12 and before["outbox_outboxevent"][0] == 5

    path = _backup(tmp_path)

    OutboxEvent.objects.all().delete()
    ProcessedEvent.objects.all().delete()
    Company.objects.filter(pk=cast.other_client.company.pk).delete()  # cascades to its users
    Company.objects.filter(pk=cast.client.company.pk).update(name="Renamed after the backup")
    _event("created-after-the-backup")
    assert _fingerprint() != before

    with pytest.raises(CommandError, match="re-run with --yes"):
        call_command("restore", str(path))
    cache.set(readcache.ALL, "before-the-restore", timeout=None)
    out = StringIO()
    call_command("restore", str(path), "--yes", stdout=out)
    assert out.getvalue().startswith(
        f"restored {path} into database {connection.settings_dict['NAME']}"
    )
    assert _fingerprint() == before
    # every tenant's cached reads predate the restored data
    assert cache.get(readcache.ALL) not in (None, "before-the-restore")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_restore_table_adds_only_the_missing_rows(tmp_path: Path) -> None:
    events = [_event(f"c{n}") for n in range(4)]
    path = _backup(tmp_path)
    originals = {e.pk: _row("outbox_outboxevent", e.pk) for e in events}

    OutboxEvent.objects.filter(pk__in=[events[0].pk, events[1].pk]).delete()
    OutboxEvent.objects.filter(pk=events[2].pk).update(payload={"changed": True}, attempts=3)
    newer = _event("created-after-the-backup")

    dry = _restore_table(path, "outbox_outboxevent", "--dry-run")
    assert dry.startswith("dry run: would have added 2 row(s)")
    assert OutboxEvent.objects.count() == 3

    out = _restore_table(path, "outbox_outboxevent")
    assert out.startswith("added 2 row(s) to outbox_outboxevent from ")
    assert "4 in the backup, 2 already present" in out
    assert OutboxEvent.objects.count() == 5
    for pk in (events[0].pk, events[1].pk, events[3].pk):
        assert _row("outbox_outboxevent", pk) == originals[pk]  # back exactly as they were
    changed = OutboxEvent.objects.get(pk=events[2].pk)
    assert changed.payload == {"changed": True} and changed.attempts == 3  # left untouched
    assert OutboxEvent.objects.filter(pk=newer.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'chefops_restore_%%'")
        assert cursor.fetchall() == []  # scratch schema dropped

    again = _restore_table(path, "outbox_outboxevent")
    assert again.startswith("added 0 row(s)")


def _row(table: str, pk: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t::text FROM {connection.ops.quote_name(table)} t WHERE id = %s", [pk]
        )
        return str(cursor.fetchone()[0])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_restore_table_moves_the_id_sequence_past_restored_rows(tmp_path: Path) -> None:
    event = _event("c1")
    for n in range(3):
        ProcessedEvent.objects.create(event_id=event.pk, handler_name=f"h{n}")
    path = _backup(tmp_path)
    ProcessedEvent.objects.all().delete()
    with connection.cursor() as cursor:
        # As on a freshly created database: the sequence starts again at 1.
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('outbox_processedevent', 'id'), 1, false)"
        )
    assert _restore_table(path, "outbox_processedevent").startswith("added 3 row(s)")
    created = ProcessedEvent.objects.create(event_id=event.pk, handler_name="after")
    assert created.pk > max(
        ProcessedEvent.objects.exclude(pk=created.pk).values_list("pk", flat=True)
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_restore_table_refuses_rows_whose_parent_is_missing(tmp_path: Path) -> None:
    cast = make_cast()
    path = _backup(tmp_path)
    gone = cast.other_client.company
    Company.objects.filter(pk=gone.pk).delete()
    users = User.objects.count()
    with pytest.raises(CommandError, match="restore the tables it references first"):
        _restore_table(path, "companies_user")
    assert User.objects.count() == users  # all or nothing
    assert _restore_table(path, "companies_company").startswith("added 1 row(s)")
    assert _restore_table(path, "companies_user").startswith("added 3 row(s)")
    assert set(User.objects.filter(company=gone.pk).values_list("email", flat=True)) == {
        cast.other_client.admin.email,
        cast.other_client.manager.email,
        cast.other_client.employee.email,
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_clear_errors_for_missing_corrupt_or_wrong_input(tmp_path: Path) -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE ops_gone_later (id integer PRIMARY KEY)")
    _event("c1")
    path = _backup(tmp_path)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE ops_gone_later")

    missing = tmp_path / "chefops-20200101T000000Z.dump"
    with pytest.raises(CommandError, match="backup file not found"):
        call_command("restore", str(missing), "--yes")
    with pytest.raises(CommandError, match="backup file not found"):
        _restore_table(missing, "outbox_outboxevent")
    corrupt = tmp_path / "corrupt.dump"
    corrupt.write_bytes(b"PGDMP but not really" * 50)
    with pytest.raises(CommandError, match="not a readable pg_dump custom-format archive"):
        call_command("restore", str(corrupt), "--yes")
    with pytest.raises(CommandError, match="not a readable pg_dump custom-format archive"):
        _restore_table(corrupt, "outbox_outboxevent")
    with pytest.raises(CommandError, match=r"table .no_such_table. is not in .*outbox_outboxevent"):
        _restore_table(path, "no_such_table")
    with pytest.raises(CommandError, match="table 'ops_gone_later' does not exist in database"):
        _restore_table(path, "ops_gone_later")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_truncated_backup_fails_and_leaves_the_database_unchanged(tmp_path: Path) -> None:
    # Incompressible payloads: the outbox data is nearly the whole file, so cutting the file
    # in half cuts into it.
    for n in range(200):
        _event(f"c{n}", {"n": n, "noise": os.urandom(1000).hex()})
    path = _backup(tmp_path)
    OutboxEvent.objects.filter(aggregate_id__in=["c1", "c2"]).delete()
    before = _fingerprint()
    truncated = tmp_path / "chefops-20200101T000000Z.dump"
    data = path.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CommandError, match="restore failed, database left unchanged"):
        call_command("restore", str(truncated), "--yes")
    with pytest.raises(CommandError, match="pg_restore failed"):
        _restore_table(truncated, "outbox_outboxevent")
    assert _fingerprint() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_backup_keeps_the_retention_window(tmp_path: Path) -> None:
    old = tmp_path / "chefops-20000101T000000Z.dump"
    recent_name = "chefops-29990101T000000Z.dump"  # from the future: never expired
    other = tmp_path / "notes.txt"
    for file in (old, tmp_path / recent_name, other):
        file.write_bytes(b"x")
    out = StringIO()
    call_command("backup", "--dir", str(tmp_path), "--dry-run", stdout=out)
    assert "would delete chefops-20000101T000000Z.dump" in out.getvalue()
    assert old.exists() and len(list(tmp_path.glob("*.dump"))) == 2

    path = _backup(tmp_path)
    assert not old.exists()
    assert (tmp_path / recent_name).exists() and other.exists() and path.exists()
    assert settings.BACKUP_RETENTION_DAYS == 30


@pytest.mark.skipif(settings.IS_POSTGRES, reason="checks the refusal on SQLite")
@pytest.mark.django_db
@pytest.mark.parametrize(
    "command",
    [["backup"], ["restore", "x.dump", "--yes"], ["restore_table", "x.dump", "--table", "t"]],
)
def test_backup_commands_refuse_sqlite_clearly(command: list[str]) -> None:
    with pytest.raises(CommandError, match=r"needs PostgreSQL .* is sqlite"):
        call_command(*command)
