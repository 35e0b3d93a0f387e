"""Celery tasks of the accounts app (scheduled by beat; each also a management command)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="companies.auth_tokens_purge_expired", ignore_result=True)
def auth_tokens_purge_expired() -> dict[str, int]:
    """Daily: expired refresh-token families, rotated tokens and one-time tokens go."""
    from companies.services import auth_tokens_purge_expired as purge

    return purge()
