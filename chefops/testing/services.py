"""Is each configured service reachable? Asked once before a test run (conftest.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from chefops import redis_layout

CONNECT_TIMEOUT_SECONDS = 3


def unreachable_services() -> list[str]:
    """One line per configured service that does not answer, naming its URL without the
    password; empty when all answer."""
    problems = []
    if settings.IS_POSTGRES:
        problem = _postgres_problem(settings.DATABASES["default"])
        if problem:
            problems.append(problem)
    # The broker's and the cache's databases (chefops/redis_layout.py); a dead server once.
    failed: set[tuple[str, str, int]] = set()
    seen: set[str] = set()
    for name, url in (
        ("REDIS_URL", settings.REDIS_URL),
        ("CELERY_BROKER_URL", settings.REDIS_BROKER_URL),
        ("CACHE_URL", settings.CACHE_URL),
    ):
        if url and url not in seen and redis_layout.server(url) not in failed:
            seen.add(url)
            problem = _redis_problem(name, url)
            if problem:
                problems.append(problem)
                failed.add(redis_layout.server(url))
    return problems


def _postgres_problem(db: dict[str, Any]) -> str | None:
    import psycopg

    host, port = db.get("HOST") or "localhost", db.get("PORT") or 5432
    where = f"postgres://{db.get('USER') or ''}@{host}:{port}/{db.get('NAME')}"
    error: Exception | None = None
    # The test database is created from the maintenance database, as Django does; the named
    # database need not exist (no createdb).
    for dbname in ("postgres", db.get("NAME")):
        try:
            psycopg.connect(
                host=host,
                port=port,
                dbname=dbname,
                user=db.get("USER") or None,
                password=db.get("PASSWORD") or None,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
            ).close()
            return None
        except psycopg.OperationalError as exc:
            error = exc
    detail = str(error).strip().splitlines()[0] if error else "no answer"
    return f"DATABASE_URL {where} is unreachable: {detail}"


def _redis_problem(name: str, url: str) -> str | None:
    from urllib.parse import urlsplit

    import redis

    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{name} {where} is unreachable: {exc}"
    finally:
        client.close()
    return None
