"""WSGI entry point of the web process (``gunicorn chefops.wsgi``, README "Processes").

A request whose declared body is larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is answered 413 in
the API's error shape before Django runs: no view reads such a body (DRF's parsers would read
it whole into memory; Django checks the limit only for ``request.body`` and forms), and the
worker (chefops/serving.py) closes the connection after that answer instead of draining it.

The plain liveness probe (``GET /api/health``) is answered in front of Django, as the Django
view would answer it (``chefops.health.health_fast_path``, issue #18), and so is a hit of the
read cache (``chefops.readfast.read_cache_fast_path``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chefops.settings")

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def declared_body_limit(app: WSGIApp, limit: int | None) -> WSGIApp:
    """``app``, answering 413 to a request whose Content-Length exceeds ``limit`` bytes."""
    if limit is None:
        return app
    from chefops.api.errors import error_body

    message = f"Request body too large: at most {limit} bytes"
    payload = json.dumps(error_body(413, message), separators=(",", ":")).encode()
    status = f"413 {error_body(413, '')['error']}"

    def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # gunicorn rejects a malformed Content-Length before this
        if declared <= limit:
            return app(environ, start_response)
        start_response(
            status,
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return application


def _application() -> WSGIApp:
    django_app = get_wsgi_application()
    from django.conf import settings

    from chefops.health import health_fast_path
    from chefops.readfast import read_cache_fast_path

    return health_fast_path(
        declared_body_limit(read_cache_fast_path(django_app), settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    )


application = _application()
