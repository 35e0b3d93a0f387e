# One contract-leading index instead of two (docs/benchmarks.md, "Issue #18: cost as data
# grows"). On PostgreSQL the unique (contract, service_date) constraint's index takes over what
# the (contract, service_date DESC) covering index did, plus the id: it INCLUDEs id, status and
# quantities, so the finance aggregates, the ten recent services and the weekly report read it
# only. With the id in it, the planner keeps probing each of a tenant's contracts for the recent
# services (0.5 ms for a caterer with 100 contracts at 1M rows) instead of hashing every
# tenant's days of the month (20 ms, a cost that grows with the tenants); the table carries one
# big index less (1.2 GB of indexes instead of 1.4 GB at 10M rows).
#
# Without a write lock on the big table: the new unique index is built CONCURRENTLY, then
# swapped in under the constraint's name in one ALTER TABLE (a brief lock, no scan), and the
# old covering index dropped CONCURRENTLY. SQLite (no INCLUDE) keeps its plain unique index;
# only the covering index goes. The model state changes by the index only: the constraint keeps
# its name and fields.

from typing import Any

from django.db import migrations

from chefops.migration_ops import RemoveIndexConcurrentlyOnPostgres

TABLE = "servicedays_serviceday"
CONSTRAINT = "serviceday_contract_date_unique"
NEW_INDEX = "serviceday_contract_date_ucov"
PLAIN_INDEX = "serviceday_contract_date_uniq0"


def _swap(schema_editor: Any, build: str, index: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")  # a failed earlier try
    schema_editor.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {index} ON {TABLE} {build}")
    schema_editor.execute(
        f"ALTER TABLE {TABLE} DROP CONSTRAINT {CONSTRAINT}, "
        f"ADD CONSTRAINT {CONSTRAINT} UNIQUE USING INDEX {index}"
    )


def covering_unique(apps: Any, schema_editor: Any) -> None:
    _swap(
        schema_editor,
        "(contract_id, service_date) INCLUDE (id, status, expected_quantity, served_quantity)",
        NEW_INDEX,
    )


def plain_unique(apps: Any, schema_editor: Any) -> None:
    _swap(schema_editor, "(contract_id, service_date)", PLAIN_INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("servicedays", "0002_covering_contract_date_index"),
    ]

    operations = [
        migrations.RunPython(covering_unique, plain_unique, elidable=False),
        RemoveIndexConcurrentlyOnPostgres(
            model_name="serviceday",
            name="serviceday_contract_date_cov",
        ),
    ]
