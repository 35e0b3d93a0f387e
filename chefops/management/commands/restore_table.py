"""Bring back the rows of one table that went missing, without touching the rows still there.

Method (chosen for robustness, see README "Backups"):
1. The table must be in the backup's table of contents and in the database.
2. In ONE transaction: create a scratch schema and `CREATE TABLE scratch.t (LIKE public.t
   INCLUDING DEFAULTS)` (no constraints, no identity, so any row of the backup fits).
3. `pg_restore --data-only --table=t -f -` turns the archive's data for that table into its
   COPY text stream. Nothing from that output is executed as SQL: the `COPY public.t (cols)
   FROM stdin;` header is parsed (its columns checked against the live table and re-quoted by
   us) and only the data lines up to the `\\.` terminator are streamed, as they are, into
   `COPY scratch.t (cols) FROM STDIN`. In COPY text format a newline or backslash inside a value
   is escaped, so the terminator line cannot occur inside the data.
4. `INSERT INTO public.t SELECT ... FROM scratch.t WHERE the primary key is not present ...
   ON CONFLICT DO NOTHING`: existing rows (changed or not) are left alone; a row that would
   clash with another unique constraint is skipped too. Foreign keys are checked at once
   (SET CONSTRAINTS ALL IMMEDIATE) so a missing parent row gives a clear error.
5. Identity/serial sequences are moved past the highest key, the scratch schema is dropped and
   the transaction commits (or rolls back on any error, or with --dry-run).

Alternatives rejected: a temporary database needs CREATE DATABASE rights (often missing on
managed PostgreSQL) and a cross-database copy; rewriting the COPY target with sed would execute
the rest of the generated script as SQL.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, IntegrityError, connection, transaction
from psycopg import sql

from chefops import readcache
from chefops.ops import backups
from companies import principals

SCHEMA = "public"
_COPY_HEADER = re.compile(rb"^COPY (?P<target>.+?) \((?P<columns>.*)\) FROM stdin;\n$")
_CLIENT_ENCODING = re.compile(rb"^SET client_encoding = '(?P<encoding>[A-Za-z0-9_]+)';\n$")
_TERMINATOR = b"\\.\n"


def split_identifiers(text: str, separator: str) -> list[str]:
    """`public."My Table"` -> ["public", "My Table"]; `id, "a b"` -> ["id", "a b"]."""
    names: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == '"':
                if text[i + 1 : i + 2] == '"':
                    current.append('"')
                    i += 1
                else:
                    quoted = False
            else:
                current.append(char)
        elif char == '"':
            quoted = True
        elif text.startswith(separator, i):
            names.append("".join(current))
            current = []
            i += len(separator)
            continue
        else:
            current.append(char)
        i += 1
    if quoted:
        raise ValueError(f"unterminated quoted identifier in {text!r}")
    names.append("".join(current))
    return names


class Command(BaseCommand):
    help = (
        "Restore ONE table from a `manage.py backup` file the safe way: load it into a scratch "
        "schema, insert only the rows whose primary key is missing (existing rows are left "
        "untouched), drop the scratch schema. Prints how many rows were added."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            help="A chefops-*.dump made by `manage.py backup`: a file on disk, or its name (or "
            "full location) in the backup storage",
        )
        parser.add_argument("--table", required=True, help="Table name, e.g. contracts_contract")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Do everything in a transaction that is rolled back: report, change nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        backups.require_postgres("restore_table")
        self.pg_restore = backups.matching_pg_tool("pg_restore")
        with backups.local_backup(options["file"]) as path:
            self._handle(path, options)

    def _handle(self, path: Path, options: dict[str, Any]) -> None:
        table: str = options["table"]
        backups.check_backup_file(path)
        in_backup = backups.backup_table_names(path, SCHEMA)
        if table not in in_backup:
            listed = ", ".join(in_backup[:30]) + (", ..." if len(in_backup) > 30 else "")
            raise CommandError(
                f"table {table!r} is not in {options['file']}; tables in the backup: {listed}"
            )
        with connection.cursor() as cursor:
            if table not in connection.introspection.table_names(cursor):
                raise CommandError(
                    f"table {table!r} does not exist in database "
                    f"{connection.settings_dict['NAME']} (run migrate first)"
                )
        try:
            with transaction.atomic():
                counts = self._restore(path, table)
                if options["dry_run"]:
                    transaction.set_rollback(True)
        except IntegrityError as exc:
            raise CommandError(
                f"cannot insert the missing rows of {table}: {exc}".strip()
                + " (restore the tables it references first)"
            ) from exc
        except DatabaseError as exc:
            raise CommandError(f"restore of {table} failed, nothing changed: {exc}") from exc
        in_file, added = counts
        if added and not options["dry_run"]:
            # rows came back under some tenants' cached reads (or users, companies)
            readcache.invalidate_all()
            principals.invalidate_all()
        prefix = "dry run: would have added" if options["dry_run"] else "added"
        self.stdout.write(
            f"{prefix} {added} row(s) to {table} from {Path(options['file']).name}: "
            f"{in_file} in the backup, "
            f"{in_file - added} already present (left untouched)"
        )

    def _restore(self, path: Path, table: str) -> tuple[int, int]:
        scratch = f"chefops_restore_{uuid.uuid4().hex[:12]}"
        live = sql.Identifier(SCHEMA, table)
        copy_of = sql.Identifier(scratch, table)
        with connection.cursor() as cursor:
            columns, primary_key = self._columns(cursor, table)
            if not primary_key:
                raise CommandError(
                    f"table {table} has no primary key: missing rows cannot be told apart"
                )
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(scratch)))
            cursor.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(copy_of, live)
            )
            self._load(cursor, path, table, copy_of, set(columns))
            cursor.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(copy_of))
            in_file = int(cursor.fetchone()[0])
            # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: check them here, where
            # the error can be reported, not at COMMIT.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            key_match = sql.SQL(" AND ").join(
                sql.SQL("p.{col} = s.{col}").format(col=sql.Identifier(c)) for c in primary_key
            )
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {live} ({cols}) OVERRIDING SYSTEM VALUE "
                    "SELECT {s_cols} FROM {copy_of} s "
                    "WHERE NOT EXISTS (SELECT 1 FROM {live} p WHERE {key_match}) "
                    "ON CONFLICT DO NOTHING"
                ).format(
                    live=live,
                    cols=column_list,
                    s_cols=sql.SQL(", ").join(
                        sql.SQL("s.{}").format(sql.Identifier(c)) for c in columns
                    ),
                    copy_of=copy_of,
                    key_match=key_match,
                )
            )
            added = max(cursor.rowcount, 0)
            self._advance_sequences(cursor, table, columns)
            cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(scratch)))
        return in_file, added

    @staticmethod
    def _advance_sequences(cursor: Any, table: str, columns: list[str]) -> None:
        """Keys restored above an identity/serial sequence's position would collide later."""
        qualified = sql.Identifier(SCHEMA, table).as_string(connection.connection)
        for column in columns:
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [qualified, column])
            sequence = cursor.fetchone()[0]
            if not sequence:
                continue
            seq_ident = sql.Identifier(*split_identifiers(sequence, "."))
            cursor.execute(
                sql.SQL("SELECT COALESCE(MAX({}), 0) FROM {}").format(
                    sql.Identifier(column), sql.Identifier(SCHEMA, table)
                )
            )
            highest = int(cursor.fetchone()[0])
            if highest > 0:
                cursor.execute(
                    sql.SQL("SELECT setval(%s, GREATEST(%s, (SELECT last_value FROM {})))").format(
                        seq_ident
                    ),
                    [sequence, highest],
                )

    @staticmethod
    def _columns(cursor: Any, table: str) -> tuple[list[str], list[str]]:
        """Insertable columns (no generated ones) in order, and the primary key columns."""
        cursor.execute(
            """
            SELECT a.attname,
                   COALESCE(a.attnum = ANY(i.indkey), false)
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0
              AND NOT a.attisdropped AND a.attgenerated = ''
            ORDER BY a.attnum
            """,
            [SCHEMA, table],
        )
        rows = cursor.fetchall()
        return [name for name, _ in rows], [name for name, is_pk in rows if is_pk]

    def _load(
        self, cursor: Any, path: Path, table: str, copy_of: sql.Composable, live_columns: set[str]
    ) -> None:
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                [
                    self.pg_restore,
                    "--data-only",
                    f"--schema={SCHEMA}",
                    f"--table={table}",
                    "--file=-",
                    str(path),
                ],
                env=backups.pg_env(),
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
            assert process.stdout is not None
            failure: Exception | None = None
            try:
                self._stream_copy(cursor, process.stdout, table, copy_of, live_columns)
            except (CommandError, DatabaseError, psycopg.Error) as exc:
                failure = exc
            finally:
                # Read to the end so pg_restore never dies of a closed pipe: its exit status
                # must tell only whether the archive was readable.
                for _rest in process.stdout:
                    pass
                process.stdout.close()
                returncode = process.wait(timeout=60)
            if returncode != 0:
                # A damaged archive is the cause; a COPY error on its partial output is a symptom.
                stderr.seek(0)
                result = subprocess.CompletedProcess(process.args, returncode, b"", stderr.read())
                raise backups.pg_tool_error("pg_restore", result) from failure
            if isinstance(failure, psycopg.Error):
                raise CommandError(
                    f"loading {table} from the backup failed: {failure}"
                ) from failure
            if failure is not None:
                raise failure

    @staticmethod
    def _stream_copy(
        cursor: Any, stream: IO[bytes], table: str, copy_of: sql.Composable, live_columns: set[str]
    ) -> None:
        for line in stream:
            encoding = _CLIENT_ENCODING.match(line)
            if encoding:
                wanted = encoding.group("encoding").decode()
                if wanted != connection.connection.info.parameter_status("client_encoding"):
                    # The COPY data is in the dump's encoding; tell the server, for this
                    # transaction only.
                    cursor.execute(
                        sql.SQL("SET LOCAL client_encoding TO {}").format(sql.Literal(wanted))
                    )
                continue
            header = _COPY_HEADER.match(line)
            if not header:
                continue
            target = split_identifiers(header.group("target").decode(), ".")
            if target != [SCHEMA, table]:
                continue
            columns = split_identifiers(header.group("columns").decode(), ", ")
            unknown = [c for c in columns if c not in live_columns]
            if unknown:
                raise CommandError(
                    f"the backup's {table} has columns the database table lacks: "
                    f"{', '.join(unknown)}"
                )
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                copy_of, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            )
            with cursor.copy(statement) as copy:
                for data in stream:
                    if data == _TERMINATOR:
                        return
                    copy.write(data)
            raise CommandError(f"the backup's data for {table} ends early (no end-of-data mark)")
