# The contract list reads each contract's weekdays in insertion order (``ORDER BY id``): an
# index on (contract, id) that carries the weekday answers that from the index alone, in order.
# Built without a write lock on PostgreSQL.

from django.db import migrations, models

from chefops.migration_ops import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contracts", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="contractweekday",
            index=models.Index(
                fields=["contract", "id"], include=("day_of_week",), name="contractweekday_cov"
            ),
        ),
    ]
