"""Backups: the backup storage's files, and running pg_dump/pg_restore of the server's major
version with the connection in the environment (`manage.py backup`, `restore`,
`restore_table`, the admin operations page)."""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from chefops.ops import storage
from chefops.ops.reports import is_postgres

logger = logging.getLogger(__name__)


# --- Backups -----------------------------------------------------------------------------------
BACKUP_GLOB = "chefops-*.dump"
BACKUP_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_BACKUP_NAME = re.compile(r"^chefops-(\d{8}T\d{6}Z)(?:-\d+)?\.dump$")


@dataclass(frozen=True)
class BackupFile:
    name: str  # inside the backup storage
    size: int
    taken_at: datetime
    modified: datetime

    @property
    def path(self) -> PurePosixPath:
        """The name as a path inside the storage (``.name`` is the file name)."""
        return PurePosixPath(self.name)

    @property
    def age_seconds(self) -> float:
        return max(0.0, (timezone.now() - self.taken_at).total_seconds())


def backup_storage(folder: Path | None = None) -> Storage:
    """The "backups" storage (BACKUP_STORAGE_URL, by default BACKUP_DIR), or ``folder``."""
    return FileSystemStorage(location=str(folder)) if folder else storage.backups()


def backup_files(folder: Path | None = None) -> list[BackupFile]:
    """Backups in the backup storage (top level), newest first: one listing, which works for
    a bucket as for a directory. The time comes from the name (copies keep it), else from the
    file's modification time."""
    found: list[BackupFile] = []
    for item in storage.list_files(backup_storage(folder)):
        if "/" in item.name or not fnmatch.fnmatchcase(item.name, BACKUP_GLOB):
            continue
        match = _BACKUP_NAME.match(item.name)
        if match:
            taken = datetime.strptime(match.group(1), BACKUP_STAMP_FORMAT).replace(tzinfo=UTC)
        else:
            taken = item.modified
        found.append(BackupFile(item.name, item.size, taken, item.modified))
    found.sort(key=lambda b: (b.taken_at, b.modified), reverse=True)
    return found


def latest_backup() -> BackupFile | None:
    """The newest backup, None when there is none or the storage cannot be listed (logged:
    the operations page must still show the rest)."""
    try:
        files = backup_files()
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError  # only with a bucket

        if not isinstance(exc, OSError | BotoCoreError | ClientError):
            raise
        logger.warning("cannot list the backup storage: %s", exc)
        return None
    return files[0] if files else None


def require_postgres(command: str, alias: str = "default") -> None:
    if not is_postgres(alias):
        raise CommandError(
            f"{command} needs PostgreSQL (pg_dump/pg_restore); the configured database is "
            f"{connections[alias].vendor}. On SQLite, copy the database file instead "
            f"({connections[alias].settings_dict['NAME']})."
        )


def pg_env(alias: str = "default") -> dict[str, str]:
    """libpq environment for pg_dump/pg_restore: credentials never appear on a command line."""
    db = connections[alias].settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    mapping = {
        "PGHOST": db.get("HOST"),
        "PGPORT": db.get("PORT"),
        "PGUSER": db.get("USER"),
        "PGPASSWORD": db.get("PASSWORD"),
        "PGDATABASE": db.get("NAME"),
    }
    options = db.get("OPTIONS") or {}
    for option, variable in (
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
        ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ):
        mapping[variable] = options.get(option)
    env.update({k: str(v) for k, v in mapping.items() if v not in (None, "")})
    env["PGAPPNAME"] = "chefops-backup"
    return env


def server_major_version(alias: str = "default") -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0]) // 10000


def pg_tool_path(tool: str, alias: str = "default") -> str:
    """pg_dump/pg_restore to run: in PG_BIN_DIR when set, else the server major's Debian
    directory (/usr/lib/postgresql/<major>/bin) when present, else from PATH."""
    if settings.PG_BIN_DIR:
        return str(Path(settings.PG_BIN_DIR) / tool)
    versioned = Path(f"/usr/lib/postgresql/{server_major_version(alias)}/bin") / tool
    return str(versioned) if versioned.is_file() else tool


_TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.\d+)?")


def matching_pg_tool(tool: str, alias: str = "default") -> str:
    """The path of ``tool``, after checking that its major version is the server's: pg_dump
    refuses a newer server, and a dump from another major may not restore. CommandError
    (a non-zero exit) with what to install otherwise."""
    path = pg_tool_path(tool, alias)
    server = server_major_version(alias)
    try:
        result = subprocess.run(  # noqa: S603 - fixed program
            [path, "--version"], capture_output=True, check=False, timeout=30
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise CommandError(
            f"{tool} not found ({path}): install the PostgreSQL {server} client tools "
            f"(postgresql-client-{server}) or set PG_BIN_DIR to their directory"
        ) from exc
    output = result.stdout.decode(errors="replace").strip()
    match = _TOOL_VERSION.search(output)
    if result.returncode != 0 or not match:
        raise CommandError(f"cannot tell the version of {path}: {output or 'no output'!r}")
    found = int(match.group(1))
    if found != server:
        raise CommandError(
            f"{tool} is PostgreSQL {found} ({path}: {output}) but the server is PostgreSQL "
            f"{server}: install the PostgreSQL {server} client tools "
            f"(postgresql-client-{server}) or set PG_BIN_DIR to their directory"
        )
    return path


def run_pg_tool(args: list[str], *, alias: str = "default") -> subprocess.CompletedProcess[bytes]:
    """Run pg_dump/pg_restore with the connection in the environment (never in argv)."""
    try:
        return subprocess.run(  # noqa: S603 - fixed program, arguments built by us
            args, env=pg_env(alias), capture_output=True, check=False
        )
    except FileNotFoundError as exc:
        raise CommandError(
            f"{args[0]} not found: install the PostgreSQL client tools (postgresql-client)"
        ) from exc


@contextmanager
def local_backup(given: str) -> Iterator[Path]:
    """A backup named on the command line as a file on disk, or as a name in the backup
    storage (its full location, as `backup` prints it, works too): a path pg_restore can read
    (downloaded to a temporary file from an object storage, removed afterwards)."""
    path = Path(given)
    if path.exists():
        yield path
        return
    backups = storage.backups()
    name = storage.name_in(backups, given)
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not backups.exists(name):
        raise CommandError(
            f"backup file not found: {given} (neither on disk nor in {storage.describe(backups)})"
        )
    with storage.local_file(backups, name) as local:
        yield local


def _first_error_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no error output"])[0]


def check_backup_file(path: Path) -> None:
    """A clear error for a missing file or one that is not a pg_dump custom-format archive."""
    if not path.exists():
        raise CommandError(f"backup file not found: {path}")
    if not path.is_file():
        raise CommandError(f"not a file: {path}")
    result = run_pg_tool([pg_tool_path("pg_restore"), "--list", str(path)])
    if result.returncode != 0:
        raise CommandError(
            f"{path} is not a readable pg_dump custom-format archive "
            f"({_first_error_line(result.stderr)})"
        )


def backup_table_names(path: Path, schema: str = "public") -> list[str]:
    """Tables whose data the archive holds (its TOC, read without touching the database)."""
    result = run_pg_tool([pg_tool_path("pg_restore"), "--list", str(path)])
    if result.returncode != 0:
        raise CommandError(f"cannot read {path}: {_first_error_line(result.stderr)}")
    names = []
    for line in result.stdout.decode(errors="replace").splitlines():
        # "3340; 0 17001 TABLE DATA public contracts_contract postgres"
        if line.startswith(";") or " TABLE DATA " not in line:
            continue
        parts = line.split(" TABLE DATA ", 1)[1].split()
        if len(parts) >= 2 and parts[0] == schema:
            names.append(parts[1])
    return sorted(names)


def pg_tool_error(tool: str, result: subprocess.CompletedProcess[bytes]) -> CommandError:
    return CommandError(
        f"{tool} failed (exit {result.returncode}): {_first_error_line(result.stderr)}"
    )
