"""System checks of the deployment (``manage.py check``; the release phase's ``migrate`` runs
them too): the Redis servers' eviction policy, README "Redis"."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from chefops import redis_layout

REDIS_TAG = "redis"


@checks.register(REDIS_TAG)
def redis_eviction_policy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning per Redis server whose ``maxmemory-policy`` may lose what it holds (queued
    tasks, job stamps) or refuse the cache's invalidations; an info where ``CONFIG GET`` is
    refused (managed Redis), a warning where a database cannot be selected."""
    findings = redis_layout.server_findings(settings.CACHE_URL, settings.REDIS_BROKER_URL)
    return [
        (checks.Warning if finding.level == "warning" else checks.Info)(
            finding.message, id=finding.id
        )
        for finding in findings
    ]
