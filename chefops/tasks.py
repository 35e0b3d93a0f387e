from celery import shared_task


@shared_task(name="chefops.ping", ignore_result=False)
def ping() -> str:
    """Round-trip probe for the broker (used by tests and operators)."""
    return "pong"
