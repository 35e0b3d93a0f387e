from celery import shared_task

from chefops.ops.retention_tasks import retention_purge  # noqa: F401 - registers the daily task


@shared_task(name="chefops.ping", ignore_result=False)
def ping() -> str:
    """Round-trip probe for the broker (used by tests and operators)."""
    return "pong"
