"""Read-outs of the data's size and health: database size, disk, table sizes, the outbox.

Read by /metrics (chefops/ops/metrics.py), the alerts (chefops/ops/alerts.py), the admin
operations page and `manage.py dbreport`.
"""

from __future__ import annotations

import logging
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, OperationalError, connections, transaction

logger = logging.getLogger(__name__)


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


# --- Formatting ------------------------------------------------------------------------------
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
