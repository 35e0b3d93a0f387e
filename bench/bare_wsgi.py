"""The floor of the HTTP benchmark (issue #18): a WSGI "hello" app with no framework, served by
the same gunicorn configuration and worker class as ChefOps (``gunicorn bench.bare_wsgi -c
gunicorn.conf.py``). /api/health's throughput is judged against this app's in the same run.

It imports nothing of the project, so the worker loads no Django; gunicorn.conf.py and
chefops/serving.py skip their Django steps when no Django application was loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"status":"ok"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", list(HEADERS))
    return [BODY]
