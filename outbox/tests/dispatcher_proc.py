"""Subprocess entry for the multi-process tests: `manage.py outbox ARGS…` with the test effect
handlers registered (they cannot live in a real app: other tests must not see them).

    python -m outbox.tests.dispatcher_proc dispatch --loop --batch-size 50

``OUTBOX_TEST_HANDLER_SLEEP`` (seconds) slows handler A down. ``OUTBOX_TEST_READY_FILE``: a
file created once the process is connected to the database, just before the command runs (a
readiness signal that holds through PgBouncer, where server connections are shared).
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chefops.settings")
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    from outbox.tests.effect_handlers import register_effect_handlers

    register_effect_handlers(sleep_seconds=float(os.environ.get("OUTBOX_TEST_HANDLER_SLEEP", "0")))
    ready = os.environ.get("OUTBOX_TEST_READY_FILE")
    if ready:
        from pathlib import Path

        from django.db import connection

        connection.ensure_connection()
        Path(ready).touch()
    execute_from_command_line(["manage.py", "outbox", *sys.argv[1:]])


if __name__ == "__main__":
    main()
