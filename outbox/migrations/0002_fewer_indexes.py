# The PROCESSING index is redundant with outbox_status_created_idx (stale-claim recovery reads
# few rows) and costs an index write on every claim. Dropped without locking the table.

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class RemoveIndexConcurrentlyOnPostgres(RemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL; a plain DROP INDEX elsewhere (SQLite)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.RemoveIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.RemoveIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("outbox", "0001_initial"),
    ]

    operations = [
        RemoveIndexConcurrentlyOnPostgres(
            model_name="outboxevent",
            name="outbox_processing_lock_idx",
        ),
    ]
