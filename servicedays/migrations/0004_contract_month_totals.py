# Per-contract monthly sums of the service days, kept by PostgreSQL triggers
# (servicedays/month_totals.py): the finance metrics read two rows per contract instead of two
# months of its days (issue #18, docs/benchmarks.md).
#
# On PostgreSQL, in this migration's transaction: the triggers are created, then the table is
# filled from the days under a SHARE lock on them, so no write falls between the two: reads go
# on, writes of service days wait (1.3 s for 1M days on the benchmark machine, so ~13 s at 10M;
# nothing fails, there is no lock or statement timeout). SQLite gets the empty table only.

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

from servicedays import month_totals


def install_and_fill(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        month_totals.install(cursor)
        month_totals.rebuild(cursor)


def uninstall(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        month_totals.uninstall(cursor)


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0001_initial"),
        ("servicedays", "0003_unique_index_covers_reads"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContractMonthTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("month", models.DateField()),
                ("served", models.BigIntegerField(default=0)),
                ("expected", models.BigIntegerField(default=0)),
                ("deviation_served", models.BigIntegerField(default=0)),
                ("deviation_expected", models.BigIntegerField(default=0)),
                (
                    "contract",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="contracts.contract",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("contract", "month"), name="contractmonth_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(install_and_fill, uninstall, elidable=False),
    ]
