"""Archives and backups in an S3-compatible bucket: a real server (moto's, started here on a
free port) spoken to over HTTP by boto3; what lands in the bucket is read back from the server
itself, not through the code under test.

Also: the storage URLs, production's refusal of local disk, and the pg_dump/pg_restore major
version check (a stub binary that reports another major).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from chefops.ops import backups, retention, storage
from chefops.ops.storage_config import StorageURLError, storage_config
from chefops.testing.cast import make_cast
from chefops.testing.s3 import S3Server, running_s3_server
from chefops.testing.settings_probe import REQUIRED_IN_PRODUCTION, django_setup
from chefops.tests.test_ops_backup import _event as _backup_event
from chefops.tests.test_ops_backup import _fingerprint
from chefops.tests.test_retention import T0, _doomed_rows, _snapshot, _world
from chefops.tests.test_retention import _event as _outbox_event
from companies.models import Company
from outbox.models import EventStatus, OutboxEvent

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


@pytest.fixture
def buckets(s3_server: S3Server, settings: Any, tmp_path: Path) -> dict[str, str]:
    """A fresh bucket; the "archives" and "backups" storages point at two prefixes of it.
    The local directories point at empty folders: nothing may land there."""
    bucket = s3_server.new_bucket()
    settings.ARCHIVE_DIR = tmp_path / "local-archive"
    settings.BACKUP_DIR = tmp_path / "local-backups"
    settings.RUN_DIR = tmp_path / "run"
    settings.STORAGES = {
        **settings.STORAGES,
        "archives": storage_config(
            s3_server.url(bucket, "cold/archives"),
            variable="ARCHIVE_STORAGE_URL",
            dir_setting="ARCHIVE_DIR",
        ),
        "backups": storage_config(
            s3_server.url(bucket, "cold/backups"),
            variable="BACKUP_STORAGE_URL",
            dir_setting="BACKUP_DIR",
        ),
    }
    return {"bucket": bucket, "archives": "cold/archives/", "backups": "cold/backups/"}


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def _nothing_on_local_disk(settings: Any) -> None:
    for folder in (Path(settings.ARCHIVE_DIR), Path(settings.BACKUP_DIR)):
        assert not folder.exists() or not any(folder.rglob("*")), folder


# --- the storage URLs ---------------------------------------------------------------------


def test_storage_urls_name_a_local_default_a_directory_or_a_bucket() -> None:
    assert storage_config("", variable="V", dir_setting="ARCHIVE_DIR") == {
        "BACKEND": "chefops.ops.storage.SettingDirStorage",
        "OPTIONS": {"setting": "ARCHIVE_DIR"},
    }
    assert storage_config("file:///srv/chefops/backups", variable="V", dir_setting="X") == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": "/srv/chefops/backups"},
    }
    config = storage_config(
        "s3://cold-bucket/chefops/prod/?endpoint_url=https://s3.example:9000&region=eu-west-3"
        "&addressing_style=path&access_key_id=AK&secret_access_key=S%2Fk",
        variable="V",
        dir_setting="X",
    )
    assert config["BACKEND"] == "chefops.ops.storage_s3.S3Storage"
    options = config["OPTIONS"]
    assert {k: options[k] for k in ("bucket_name", "location", "endpoint_url", "region_name")} == {
        "bucket_name": "cold-bucket",
        "location": "chefops/prod",
        "endpoint_url": "https://s3.example:9000",
        "region_name": "eu-west-3",
    }
    assert (options["access_key"], options["secret_key"]) == ("AK", "S/k")
    assert options["addressing_style"] == "path" and options["querystring_auth"] is False
    # Without key parameters the standard AWS chain (AWS_ACCESS_KEY_ID, ...) applies.
    bare = storage_config("s3://b", variable="V", dir_setting="X")["OPTIONS"]
    assert "access_key" not in bare and bare["location"] == ""


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/srv/archive", "must be empty, file:///path or s3://"),
        ("gs://bucket/x", "must be empty, file:///path or s3://"),
        ("file://relative/path", "file:///absolute/path"),
        ("s3:///prefix-only", "no bucket"),
        ("s3://bucket/x?region=eu&acl=public-read", "unknown parameter(s) acl"),
        ("s3://bucket/x?addressing_style=sideways", "addressing_style is path, virtual or auto"),
    ],
)
def test_a_wrong_storage_url_is_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(StorageURLError, match=re.escape(message)):
        storage_config(url, variable="ARCHIVE_STORAGE_URL", dir_setting="ARCHIVE_DIR")


def test_the_local_default_follows_its_directory_setting(settings: Any, tmp_path: Path) -> None:
    settings.ARCHIVE_DIR = tmp_path / "one"
    archives = storages["archives"]
    assert isinstance(archives, FileSystemStorage)
    assert archives.location == str(tmp_path / "one")
    settings.ARCHIVE_DIR = tmp_path / "two"
    assert storage.describe(storage.archives()) == str(tmp_path / "two")


def _production(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    production = {k: v for k, v in REQUIRED_IN_PRODUCTION.items() if k != "ALLOW_LOCAL_ARCHIVES"}
    code = (
        "from django.conf import settings as s; "
        "print(s.STORAGES['archives']['BACKEND'], s.STORAGES['backups']['BACKEND'])"
    )
    return django_setup({**production, **extra}, code)


def test_production_refuses_archives_and_backups_on_local_disk_unless_told() -> None:
    refused = _production({})
    assert refused.returncode != 0
    assert (
        "DJANGO_ENV=production keeps archives and backups on local disk, which a redeploy "
        "wipes: set ARCHIVE_STORAGE_URL and BACKUP_STORAGE_URL to s3://"
    ) in refused.stderr
    half = _production({"ARCHIVE_STORAGE_URL": "s3://cold/archives"})
    assert half.returncode != 0 and "set BACKUP_STORAGE_URL to s3://" in half.stderr
    on_file = _production(
        {"ARCHIVE_STORAGE_URL": "s3://cold/archives", "BACKUP_STORAGE_URL": "file:///srv/b"}
    )
    assert on_file.returncode != 0 and "set BACKUP_STORAGE_URL to s3://" in on_file.stderr
    bad = _production({"ARCHIVE_STORAGE_URL": "ftp://x", "ALLOW_LOCAL_ARCHIVES": "true"})
    assert bad.returncode != 0 and "ARCHIVE_STORAGE_URL must be empty" in bad.stderr

    in_buckets = _production(
        {"ARCHIVE_STORAGE_URL": "s3://cold/archives", "BACKUP_STORAGE_URL": "s3://cold/backups"}
    )
    assert in_buckets.returncode == 0, in_buckets.stderr
    assert in_buckets.stdout.split() == ["chefops.ops.storage_s3.S3Storage"] * 2
    opted_out = _production({"ALLOW_LOCAL_ARCHIVES": "true"})
    assert opted_out.returncode == 0, opted_out.stderr
    assert opted_out.stdout.split() == ["chefops.ops.storage.SettingDirStorage"] * 2


# --- archives in the bucket ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_purged_company_is_archived_in_the_bucket_and_restored_equal(
    s3_server: S3Server, buckets: dict[str, str], settings: Any
) -> None:
    world = _world()
    doomed = world["doomed"]
    before = _doomed_rows(doomed)
    assert len(before) == 18
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        out = _run("purge_deleted_companies")
    assert out == "purge_deleted_companies: archived and deleted 1 company(ies), 18 row(s)"
    name = f"companies/2026-02-10/{doomed.pk}.jsonl.gz"
    objects = s3_server.keys(buckets["bucket"])
    assert list(objects) == [buckets["archives"] + name] and objects[buckets["archives"] + name]
    assert not Company.objects.filter(pk=doomed.pk).exists()
    assert _doomed_rows(doomed) == {}
    _nothing_on_local_disk(settings)

    listing = _run("archive", "list")
    assert listing.splitlines() == [
        f"2026-02-10  {objects[buckets['archives'] + name]:>10}  {name}",
        "1 archive(s)",
    ]
    out = _run("archive", "restore", name)
    assert out.startswith(f"restored 18 row(s) from {name}")
    assert _doomed_rows(doomed) == before
    # The full location names it too; restoring twice is refused, nothing changes.
    location = f"s3://{buckets['bucket']}/{buckets['archives']}{name}"
    assert storage.location_of(storage.archives(), name) == location
    with pytest.raises(CommandError, match="already exist"):
        _run("archive", "restore", location)
    with pytest.raises(CommandError, match="archive not found"):
        _run("archive", "restore", "companies/2026-02-10/nope.jsonl.gz")
    assert _doomed_rows(doomed) == before


@pytest.mark.django_db
def test_outbox_batches_are_objects_in_the_bucket_and_expire_after_a_year(
    s3_server: S3Server, buckets: dict[str, str], settings: Any
) -> None:
    OutboxEvent.objects.all().delete()
    processed = [
        _outbox_event(EventStatus.PROCESSED, T0 + timedelta(seconds=i), i) for i in range(7)
    ]
    before = _snapshot(OutboxEvent.objects.filter(pk__in=[e.pk for e in processed]))
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        out = _run("purge_outbox_events", "--batch-size", "3")
        # a second run at the same (frozen) instant never overwrites the first one's objects
        _outbox_event(EventStatus.PROCESSED, T0, 99)
        again = retention.outbox_events_purge(batch_size=3)
    assert out.startswith("purge_outbox_events: archived and deleted 7 processed event(s)")
    assert "in 3 batch(es)" in out
    assert (again.events, again.archive) == (1, "outbox/2026-02-10/")
    assert OutboxEvent.objects.count() == 0
    keys = sorted(s3_server.keys(buckets["bucket"]))
    assert len(keys) == 4
    pattern = re.compile(
        re.escape(buckets["archives"]) + r"outbox/2026-02-10/\d{12}Z-[0-9a-f]{8}-\d{5}\.jsonl\.gz"
    )
    assert all(pattern.fullmatch(k) for k in keys), keys
    _nothing_on_local_disk(settings)

    names = [a.name for a in retention.archive_files()]
    assert names == [k.removeprefix(buckets["archives"]) for k in keys]
    # Every batch restores; together they are the 7 events, exactly as they were.
    restored = 0
    for name in names:
        restored += sum(retention.archive_restore(name).values())
    assert restored == 8
    assert _snapshot(OutboxEvent.objects.filter(pk__in=[e.pk for e in processed])) == before

    archived_on = T0 + timedelta(days=31)
    with time_machine.travel(archived_on + timedelta(days=364), tick=False):
        assert _run("purge_archives").startswith("purge_archives: deleted 0 archive(s)")
    assert len(s3_server.keys(buckets["bucket"])) == 4
    with time_machine.travel(archived_on + timedelta(days=366), tick=False):
        assert _run("purge_archives").startswith("purge_archives: deleted 4 archive(s)")
    assert s3_server.keys(buckets["bucket"]) == {}


# --- backups in the bucket ----------------------------------------------------------------


def _backup() -> tuple[str, int]:
    out = _run("backup")
    match = re.match(r"^backup (\S+) \(.*?, (\d+) bytes\)", out)
    assert match, out
    return match.group(1), int(match.group(2))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_backup_goes_to_the_bucket_and_restores_equal(
    s3_server: S3Server, buckets: dict[str, str], settings: Any
) -> None:
    make_cast()
    for n in range(5):
        _backup_event(f"c{n}")
    bucket, prefix = buckets["bucket"], buckets["backups"]
    expired = f"{prefix}chefops-20000101T000000Z.dump"
    s3_server.client().put_object(Bucket=bucket, Key=expired, Body=b"old")
    before = _fingerprint()

    location, size = _backup()
    name = location.rsplit("/", 1)[1]
    assert re.fullmatch(r"chefops-\d{8}T\d{6}Z\.dump", name)
    assert location == f"s3://{bucket}/{prefix}{name}"
    objects = s3_server.keys(bucket)
    assert objects == {prefix + name: size}  # the expired backup was deleted
    assert size > 1000
    _nothing_on_local_disk(settings)
    latest = backups.latest_backup()  # the operations page and its backup age read the bucket
    assert latest is not None and (latest.name, latest.size) == (name, size)
    assert latest.path.name == name and latest.age_seconds < 3600

    OutboxEvent.objects.all().delete()
    Company.objects.update(name="Renamed after the backup")
    assert _fingerprint() != before
    out = _run("restore", name, "--yes")
    assert out.startswith(f"restored {name} into database {connection.settings_dict['NAME']}")
    assert _fingerprint() == before

    # Named by its full location too; restore_table reads the bucket the same way.
    OutboxEvent.objects.filter(aggregate_id="c1").delete()
    out = _run("restore_table", location, "--table", "outbox_outboxevent")
    assert out.startswith(f"added 1 row(s) to outbox_outboxevent from {name}")
    assert _fingerprint() == before
    assert _run("restore", location, "--dry-run").startswith(f"dry run: {location} is a valid")
    with pytest.raises(CommandError, match="backup file not found: chefops-2001"):
        _run("restore", "chefops-20010101T000000Z.dump", "--yes")


# --- the dump tools match the server -------------------------------------------------------


def _stub_tools(folder: Path, major: int) -> Path:
    folder.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = folder / tool
        script.write_text(f"#!/bin/sh\necho '{tool} (PostgreSQL) {major}.8'\n")
        script.chmod(0o755)
    return folder


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_backup_and_restore_stop_when_the_tools_are_another_major(
    settings: Any, tmp_path: Path
) -> None:
    settings.BACKUP_DIR = tmp_path / "backups"
    server = backups.server_major_version()
    good = Path(_run("backup").split()[1])  # the real tools match: a backup is taken
    assert good.is_file()
    other = server - 1
    settings.PG_BIN_DIR = str(_stub_tools(tmp_path / "stub", other))
    for tool, command in (
        ("pg_dump", ["backup"]),
        ("pg_restore", ["restore", str(good), "--yes"]),
        ("pg_restore", ["restore_table", str(good), "--table", "outbox_outboxevent"]),
    ):
        with pytest.raises(CommandError) as caught:
            call_command(*command)
        message = str(caught.value)
        assert message.startswith(
            f"{tool} is PostgreSQL {other} ({tmp_path / 'stub' / tool}: {tool} (PostgreSQL) "
            f"{other}.8) but the server is PostgreSQL {server}: install the PostgreSQL {server} "
            f"client tools (postgresql-client-{server}) or set PG_BIN_DIR"
        ), message
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [good.name]  # nothing new

    settings.PG_BIN_DIR = str(tmp_path / "nowhere")
    with pytest.raises(CommandError, match=r"pg_dump not found .*postgresql-client-\d+"):
        call_command("backup")


def test_an_unreachable_backup_bucket_leaves_the_latest_backup_unknown_not_an_error(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": storage_config(
            "s3://gone/backups?endpoint_url=http://127.0.0.1:1&region=us-east-1"
            "&access_key_id=k&secret_access_key=s",
            variable="BACKUP_STORAGE_URL",
            dir_setting="BACKUP_DIR",
        ),
    }
    assert backups.latest_backup() is None
    assert "cannot list the backup storage" in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_tools_of_the_servers_major_are_preferred(settings: Any) -> None:
    settings.PG_BIN_DIR = ""
    major = backups.server_major_version()
    versioned = Path(f"/usr/lib/postgresql/{major}/bin/pg_dump")
    expected = str(versioned) if versioned.is_file() else "pg_dump"
    assert backups.pg_tool_path("pg_dump") == expected
    assert backups.matching_pg_tool("pg_dump") == expected  # the machine's tools pass the check


@pytest.mark.postgres
@pytest.mark.django_db
def test_manage_py_backup_exits_non_zero_on_a_version_mismatch(tmp_path: Path) -> None:
    db = connection.settings_dict
    server = backups.server_major_version()
    stub = _stub_tools(tmp_path / "stub", server + 1)
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "REDIS_URL"}}
    env.update(
        {
            "DJANGO_ENV": "development",
            "DATABASE_URL": url,
            "PG_BIN_DIR": str(stub),
            "BACKUP_DIR": str(tmp_path / "backups"),
            "RUN_DIR": str(tmp_path / "run"),
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "backup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert (
        f"CommandError: pg_dump is PostgreSQL {server + 1} ({stub / 'pg_dump'}: pg_dump "
        f"(PostgreSQL) {server + 1}.8) but the server is PostgreSQL {server}"
    ) in result.stderr
    assert not (tmp_path / "backups").exists()
