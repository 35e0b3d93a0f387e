from celery import shared_task


@shared_task(name="outbox.dispatch", ignore_result=True)
def dispatch() -> int:
    """Placeholder until the dispatcher lands: counts due events (replaced in the outbox issue)."""
    from outbox.models import OutboxEvent

    return OutboxEvent.objects.filter(status="PENDING").count()
