# The (contract, service_date DESC) index carries status and quantities (INCLUDE) so that the
# finance aggregates read the index only. Built before the old one is dropped, both without a
# write lock on PostgreSQL (the table holds millions of rows).

from django.db import migrations, models

from chefops.migration_ops import AddIndexConcurrentlyOnPostgres, RemoveIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contracts", "0001_initial"),
        ("servicedays", "0001_initial"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="serviceday",
            index=models.Index(
                fields=["contract", "-service_date"],
                include=("status", "expected_quantity", "served_quantity"),
                name="serviceday_contract_date_cov",
            ),
        ),
        RemoveIndexConcurrentlyOnPostgres(
            model_name="serviceday",
            name="serviceday_contract_date_desc",
        ),
    ]
