"""Operator read-outs shared by /metrics, the admin operations page and the ops commands.

Thresholds here mirror deploy/prometheus/alerts.yml, so `manage.py check_alerts` and the
operations page say the same thing Prometheus would (a test keeps the two in step).
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from django.core.management.base import CommandError
from django.db import DatabaseError, OperationalError, connections, transaction
from django.utils import timezone

from chefops import storage

logger = logging.getLogger(__name__)

# --- Metric names (exposed by chefops.metrics, read back here) -----------------------------
REQUESTS_TOTAL = "chefops_http_requests_total"
LATENCY_BUCKET = "chefops_http_request_duration_seconds_bucket"
# Probes are not user traffic: the post-deploy check leaves them out of its error/latency gate.
PROBE_ROUTES = frozenset({"api/health", "api/health/ready", "metrics"})

# --- Alert thresholds (same numbers as deploy/prometheus/alerts.yml) ------------------------
HTTP_5XX_RATIO_MAX = 0.01
HTTP_P95_SECONDS_MAX = 1.0
DB_SIZE_QUOTA_RATIO_MAX = 0.80
DISK_FREE_RATIO_MIN = 0.20
OUTBOX_OLDEST_PENDING_SECONDS_MAX = 300.0
OUTBOX_DEAD_MAX = 0

BACKUP_GLOB = "chefops-*.dump"


# --- Database and disk -----------------------------------------------------------------------
def is_postgres(alias: str = "default") -> bool:
    return connections[alias].vendor == "postgresql"


def database_size_bytes(alias: str = "default") -> int:
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_database_size(current_database())")
            return int(cursor.fetchone()[0])
        name = str(connection.settings_dict["NAME"])
        files = [Path(name), Path(name + "-wal")]
        if files[0].is_file():
            return sum(f.stat().st_size for f in files if f.is_file())
        # In-memory database (tests): pages in use.
        cursor.execute("PRAGMA page_count")
        pages = int(cursor.fetchone()[0])
        cursor.execute("PRAGMA page_size")
        return pages * int(cursor.fetchone()[0])


_data_dir_cache: dict[str, Path] = {}


def disk_usage_path(alias: str = "default") -> Path:
    """The directory whose filesystem holds the data (see DISK_USAGE_PATH in settings)."""
    if settings.DISK_USAGE_PATH:
        return Path(settings.DISK_USAGE_PATH)
    connection = connections[alias]
    key = f"{alias}:{connection.settings_dict['NAME']}"
    if key in _data_dir_cache:
        return _data_dir_cache[key]
    path = Path(settings.BASE_DIR)
    if connection.vendor == "sqlite":
        db_file = Path(str(connection.settings_dict["NAME"]))
        if db_file.parent.is_dir():
            path = db_file.parent
    else:
        try:
            # Needs superuser or pg_read_all_settings; a savepoint keeps a refusal harmless.
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                cursor.execute("SHOW data_directory")
                data_dir = Path(cursor.fetchone()[0])
            if data_dir.exists():  # the server runs on this machine
                path = data_dir
        except OperationalError:
            return path  # database unreachable now: ask again next time
        except (DatabaseError, OSError) as exc:  # e.g. no privilege to read the setting
            logger.debug("ops: data_directory not readable (%s); using BASE_DIR", exc)
    _data_dir_cache[key] = path
    return path


@dataclass(frozen=True)
class DiskUsage:
    path: Path
    total: int
    free: int

    @property
    def free_ratio(self) -> float:
        return self.free / self.total if self.total else 0.0


def disk_usage(alias: str = "default") -> DiskUsage:
    path = disk_usage_path(alias)
    usage = shutil.disk_usage(path)
    return DiskUsage(path=path, total=usage.total, free=usage.free)


@dataclass(frozen=True)
class TableSize:
    name: str
    rows: int | None
    table_bytes: int | None
    index_bytes: int | None
    total_bytes: int | None


def table_sizes(limit: int = 20, alias: str = "default") -> list[TableSize]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                """
                SELECT c.relname,
                       COALESCE(s.n_live_tup, GREATEST(c.reltuples, 0))::bigint,
                       pg_table_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
                FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace
                LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
                WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
                ORDER BY pg_total_relation_size(c.oid) DESC, c.relname
                LIMIT %s
                """,
                [limit],
            )
            return [TableSize(*row) for row in cursor.fetchall()]
        tables = connection.introspection.table_names(cursor)
        sizes: dict[str, int] = defaultdict(int)
        index_sizes: dict[str, int] = defaultdict(int)
        try:
            cursor.execute(
                "SELECT s.name, m.type, m.tbl_name, SUM(s.pgsize) FROM dbstat s "
                "JOIN sqlite_master m ON m.name = s.name GROUP BY s.name"
            )
            for _name, kind, table, size in cursor.fetchall():
                (index_sizes if kind == "index" else sizes)[table] += int(size)
        except DatabaseError:  # SQLite built without the dbstat virtual table
            pass
        result = []
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT COUNT(*) FROM {quoted}")  # noqa: S608 - introspected name
            rows = int(cursor.fetchone()[0])
            known = table in sizes
            result.append(
                TableSize(
                    name=table,
                    rows=rows,
                    table_bytes=sizes[table] if known else None,
                    index_bytes=index_sizes[table] if known else None,
                    total_bytes=sizes[table] + index_sizes[table] if known else None,
                )
            )
        result.sort(key=lambda t: (-(t.total_bytes or 0), -(t.rows or 0), t.name))
        return result[:limit]


# --- Outbox ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutboxHealth:
    backlog: int  # PENDING + PROCESSING: not delivered yet
    dead: int
    oldest_pending_age_seconds: float  # oldest undelivered event, 0 when none


def outbox_health() -> OutboxHealth:
    """The outbox app's selectors: indexed queries that never count PROCESSED rows (the bulk
    of the table), cheap enough for every scrape."""
    from outbox.selectors import (
        outbox_backlog_count,
        outbox_dead_count,
        outbox_oldest_pending_age_seconds,
    )

    return OutboxHealth(
        backlog=outbox_backlog_count(),
        dead=outbox_dead_count(),
        oldest_pending_age_seconds=outbox_oldest_pending_age_seconds(),
    )


# --- HTTP figures from Prometheus samples --------------------------------------------------
@dataclass(frozen=True)
class HttpStats:
    requests: float
    errors_5xx: float
    p95_seconds: float | None

    @property
    def error_ratio(self) -> float:
        return self.errors_5xx / self.requests if self.requests else 0.0


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """PromQL's histogram_quantile over cumulative bucket counts {le: count}."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                # Like Prometheus: the answer is the highest finite bucket bound.
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def http_stats(families: Iterable[Any], exclude_routes: frozenset[str] = frozenset()) -> HttpStats:
    """Totals over every label set (and every worker): request count, 5xx count, p95."""
    requests = errors = 0.0
    buckets: dict[float, float] = defaultdict(float)
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("route") in exclude_routes:
                continue
            if sample.name == REQUESTS_TOTAL:
                requests += sample.value
                if labels.get("status") == "5xx":
                    errors += sample.value
            elif sample.name == LATENCY_BUCKET:
                buckets[float(labels["le"])] += sample.value
    return HttpStats(requests, errors, histogram_quantile(0.95, buckets))


def local_http_families() -> list[Any]:
    """This deployment's HTTP metrics without a scrape: the gunicorn workers' multiprocess files
    when PROMETHEUS_MULTIPROC_DIR points at them, else this process's own registry."""
    from prometheus_client import REGISTRY
    from prometheus_client.multiprocess import MultiProcessCollector

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if path and Path(path).is_dir():
        return list(MultiProcessCollector(None, path=path).collect())
    return list(REGISTRY.collect())


# --- Alerts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertCheck:
    name: str
    firing: bool | None  # None: no data to judge
    value: str
    threshold: str

    @property
    def state(self) -> str:
        return {True: "FIRING", False: "ok", None: "no data"}[self.firing]


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.2f}%"


def evaluate_alerts(http: HttpStats | None = None) -> list[AlertCheck]:
    """The alert rules of deploy/prometheus/alerts.yml, judged from live figures.

    HTTP figures are cumulative since the web server started (Prometheus uses a 5-minute
    window); pass `http` to judge figures read elsewhere (e.g. a scraped /metrics).
    """
    from chefops.jobs import job_statuses

    checks: list[AlertCheck] = []
    if http is None:
        http = http_stats(local_http_families())
    if http.requests:
        checks.append(
            AlertCheck(
                "http_5xx_ratio",
                http.error_ratio > HTTP_5XX_RATIO_MAX,
                f"{_pct(http.error_ratio)} of {int(http.requests)} requests",
                f"> {_pct(HTTP_5XX_RATIO_MAX)}",
            )
        )
    else:
        checks.append(
            AlertCheck("http_5xx_ratio", None, "no requests", f"> {_pct(HTTP_5XX_RATIO_MAX)}")
        )
    p95 = http.p95_seconds
    checks.append(
        AlertCheck(
            "http_p95_latency",
            None if p95 is None else p95 > HTTP_P95_SECONDS_MAX,
            "no requests" if p95 is None else f"{p95:.3f}s",
            f"> {HTTP_P95_SECONDS_MAX:g}s",
        )
    )
    quota = settings.DB_SIZE_QUOTA_BYTES
    try:
        # Savepoints: a failing read must not break the caller's transaction (admin page).
        with transaction.atomic():
            size = database_size_bytes()
        ratio = size / quota if quota else 0.0
        checks.append(
            AlertCheck(
                "database_size",
                ratio > DB_SIZE_QUOTA_RATIO_MAX,
                f"{human_bytes(size)} = {_pct(ratio)} of {human_bytes(quota)}",
                f"> {_pct(DB_SIZE_QUOTA_RATIO_MAX)} of quota",
            )
        )
    except DatabaseError as exc:
        checks.append(
            AlertCheck(
                "database_size",
                None,
                f"database error: {_first_line(exc)}",
                f"> {_pct(DB_SIZE_QUOTA_RATIO_MAX)} of quota",
            )
        )
    try:
        disk = disk_usage()
    except (OSError, DatabaseError) as exc:
        checks.append(
            AlertCheck(
                "disk_free",
                None,
                f"unreadable: {_first_line(exc)}",
                f"< {_pct(DISK_FREE_RATIO_MIN)}",
            )
        )
    else:
        checks.append(
            AlertCheck(
                "disk_free",
                disk.free_ratio < DISK_FREE_RATIO_MIN,
                f"{human_bytes(disk.free)} free = {_pct(disk.free_ratio)} of {disk.path}",
                f"< {_pct(DISK_FREE_RATIO_MIN)}",
            )
        )
    try:
        with transaction.atomic():
            outbox = outbox_health()
        checks.append(
            AlertCheck(
                "outbox_oldest_pending",
                outbox.oldest_pending_age_seconds > OUTBOX_OLDEST_PENDING_SECONDS_MAX,
                f"{outbox.oldest_pending_age_seconds:.0f}s ({outbox.backlog} undelivered)",
                f"> {OUTBOX_OLDEST_PENDING_SECONDS_MAX:.0f}s",
            )
        )
        checks.append(
            AlertCheck(
                "outbox_dead_events",
                outbox.dead > OUTBOX_DEAD_MAX,
                str(outbox.dead),
                f"> {OUTBOX_DEAD_MAX}",
            )
        )
    except DatabaseError as exc:
        error = f"database error: {_first_line(exc)}"
        checks.append(
            AlertCheck(
                "outbox_oldest_pending", None, error, f"> {OUTBOX_OLDEST_PENDING_SECONDS_MAX:.0f}s"
            )
        )
        checks.append(AlertCheck("outbox_dead_events", None, error, f"> {OUTBOX_DEAD_MAX}"))
    for job in job_statuses():
        checks.append(
            AlertCheck(
                f"job_stale:{job.job}",
                None if job.age_seconds is None else job.stale,
                "never recorded"
                if job.age_seconds is None
                else f"last success {job.age_seconds:.0f}s ago",
                f"> {2 * job.period_seconds}s (2 x {job.period_seconds}s)",
            )
        )
    return checks


# --- Backups -----------------------------------------------------------------------------------
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


def human_bytes(size: float | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


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
