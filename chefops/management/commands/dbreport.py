from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connection, transaction

from chefops.ops import alerts, reports

ENABLE_PG_STAT_STATEMENTS = (
    "to enable it: add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf "
    "(managed PostgreSQL: the parameter group / flags), restart PostgreSQL, then run "
    "`CREATE EXTENSION pg_stat_statements;` in this database"
)


class Command(BaseCommand):
    help = (
        "Database report: slowest queries (pg_stat_statements, when installed), table and index "
        "sizes, connections per database and user, database size against DB_SIZE_QUOTA_BYTES."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=15, help="Rows per section (default 15)")

    def handle(self, *args: Any, **options: Any) -> None:
        limit = max(1, options["limit"])
        size = reports.database_size_bytes()
        quota = settings.DB_SIZE_QUOTA_BYTES
        share = size / quota if quota else 0.0
        name = connection.settings_dict["NAME"]
        if connection.vendor != "postgresql":
            self._section(f"Database ({connection.vendor})")
            self.stdout.write(
                "note: this is SQLite, not PostgreSQL: there are no query statistics, index "
                "sizes or connection lists. The figures below come from the database file."
            )
            self.stdout.write(f"file: {name}")
            self._tables(limit)
        else:
            self._section(f"Slowest queries (pg_stat_statements, database {name})")
            self._slow_queries(limit)
            self._tables(limit)
            self._indexes(limit)
            self._connections()
        self._section("Size")
        alert_ratio = alerts.thresholds().db_size_quota_ratio_max  # deploy/prometheus/alerts.yml
        self.stdout.write(
            f"database size {reports.human_bytes(size)} ({size} bytes) = {share * 100:.1f}% of "
            f"DB_SIZE_QUOTA_BYTES {reports.human_bytes(quota)}; alert above "
            f"{alert_ratio * 100:.0f}%"
        )
        state = "OVER the alert threshold" if share > alert_ratio else "ok"
        self.stdout.write(f"dbreport: {connection.vendor} database {name}, size {state}")

    def _section(self, title: str) -> None:
        self.stdout.write(f"\n== {title} ==")

    def _table(self, headers: list[str], rows: list[list[str]]) -> None:
        widths = [
            max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
            for i, h in enumerate(headers)
        ]
        self.stdout.write(
            "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
        )
        for row in rows:
            self.stdout.write(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            )
        if not rows:
            self.stdout.write("(none)")

    def _slow_queries(self, limit: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            if cursor.fetchone() is None:
                self.stdout.write(
                    "note: pg_stat_statements is not installed in this database, so there are "
                    f"no query statistics; {ENABLE_PG_STAT_STATEMENTS}"
                )
                return
            try:
                # Savepoint: the view raises when the library is not preloaded.
                with transaction.atomic():
                    cursor.execute(
                        """
                        SELECT calls, round(mean_exec_time::numeric, 2),
                               round(total_exec_time::numeric, 1), rows,
                               left(regexp_replace(query, '\\s+', ' ', 'g'), 120)
                        FROM pg_stat_statements
                        WHERE dbid = (
                            SELECT oid FROM pg_database WHERE datname = current_database()
                        )
                        ORDER BY mean_exec_time DESC
                        LIMIT %s
                        """,
                        [limit],
                    )
                    rows = cursor.fetchall()
            except DatabaseError as exc:
                self.stdout.write(
                    f"note: pg_stat_statements is installed but not readable ({exc}".strip()
                    + f"); {ENABLE_PG_STAT_STATEMENTS}"
                )
                return
        self._table(
            ["calls", "mean ms", "total ms", "rows", "query"],
            [[str(c) for c in row] for row in rows],
        )

    def _tables(self, limit: int) -> None:
        self._section("Tables (largest first)")
        self._table(
            ["table", "rows", "data", "indexes", "total"],
            [
                [
                    t.name,
                    "-" if t.rows is None else str(t.rows),
                    reports.human_bytes(t.table_bytes),
                    reports.human_bytes(t.index_bytes),
                    reports.human_bytes(t.total_bytes),
                ]
                for t in reports.table_sizes(limit)
            ],
        )

    def _indexes(self, limit: int) -> None:
        self._section("Indexes (largest first)")
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT s.indexrelname, s.relname, pg_relation_size(s.indexrelid), s.idx_scan
                FROM pg_stat_user_indexes s
                WHERE s.schemaname = current_schema()
                ORDER BY pg_relation_size(s.indexrelid) DESC, s.indexrelname
                LIMIT %s
                """,
                [limit],
            )
            rows = cursor.fetchall()
        self._table(
            ["index", "table", "size", "scans"],
            [
                [name, table, reports.human_bytes(size), str(scans)]
                for name, table, size, scans in rows
            ],
        )

    def _connections(self) -> None:
        self._section("Connections (pg_stat_activity)")
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT COALESCE(datname, '-'), COALESCE(usename, '-'),
                       COUNT(*),
                       COUNT(*) FILTER (WHERE state = 'active'),
                       COUNT(*) FILTER (
                           WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
                       ),
                       COALESCE(MAX(EXTRACT(EPOCH FROM now() - xact_start))
                                FILTER (WHERE state <> 'idle'), 0)
                FROM pg_stat_activity
                WHERE backend_type = 'client backend'
                GROUP BY 1, 2
                ORDER BY 3 DESC, 1, 2
                """
            )
            rows = cursor.fetchall()
            cursor.execute("SHOW max_connections")
            max_connections = cursor.fetchone()[0]
        self._table(
            ["database", "user", "connections", "active", "idle in tx", "oldest tx s"],
            [[d, u, str(n), str(a), str(i), f"{float(x):.0f}"] for d, u, n, a, i, x in rows],
        )
        self.stdout.write(f"max_connections = {max_connections}")
