"""The operations page of the admin (/admin/operations/, staff only)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin
from django.db import DatabaseError
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from chefops.health import broker_ok, cache_ok, database_ok
from chefops.ops import alerts, backups, reports
from chefops.ops.jobs import job_statuses

logger = logging.getLogger(__name__)


def _dead_events_url() -> str:
    try:
        changelist = reverse("admin:outbox_outboxevent_changelist")
    except NoReverseMatch:  # outbox admin not registered (yet)
        changelist = "/admin/outbox/outboxevent/"
    return f"{changelist}?status__exact=DEAD"


def operations_view(request: HttpRequest) -> TemplateResponse:
    """Health, outbox, alerts, table sizes, jobs and the latest backup on one page.

    Wrapped in `admin.site.admin_view` in urls.py: staff only, others go to the admin login.
    """
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Operations",
        "health": [
            ("Database", database_ok()),
            ("Cache", cache_ok()),
            ("Broker", broker_ok()),
        ],
        "dead_events_url": _dead_events_url(),
        "alerts": alerts.evaluate_alerts(),
        "jobs": [
            {
                "name": job.job,
                "period_seconds": job.period_seconds,
                "last_success": job.last_success,
                "age": reports.human_age(job.age_seconds),
                "stale": job.stale,
            }
            for job in job_statuses()
        ],
        "outbox": None,
        "tables": [],
        "database_error": "",
    }
    try:
        context["outbox"] = reports.outbox_health()
        context["tables"] = [
            {
                "name": t.name,
                "rows": t.rows,
                "table": reports.human_bytes(t.table_bytes),
                "indexes": reports.human_bytes(t.index_bytes),
                "total": reports.human_bytes(t.total_bytes),
            }
            for t in reports.table_sizes(limit=25)
        ]
    except DatabaseError as exc:
        logger.warning("operations page: database error: %s", exc)
        context["database_error"] = str(exc)
    backup = backups.latest_backup()
    context["backup"] = (
        {
            "name": backup.path.name,
            "size": reports.human_bytes(backup.size),
            "taken_at": backup.taken_at,
            "age": reports.human_age(backup.age_seconds),
        }
        if backup
        else None
    )
    return TemplateResponse(request, "admin/operations.html", context)
