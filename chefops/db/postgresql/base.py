"""Django's PostgreSQL backend, with a health check that costs a round trip only when the
connection shows a sign of trouble (issue #18).

Django's ``CONN_HEALTH_CHECKS`` runs ``SELECT 1`` on a persistent connection at its first use
in every request: a round trip and a statement per request (10-15 % of a data read's CPU,
docs/benchmarks.md), whose purpose is to reconnect instead of failing the request when the
connection died while idle. A connection the server ended — a restart, ``pg_terminate_backend``,
an idle timeout, PgBouncer going away — has something to read on its socket while idle (the
server's last message or the end of the stream); so does one the client side closed. This
backend looks at the socket first (one ``poll`` with no wait): nothing to read, the connection
is used as it is; anything to read, Django's ``SELECT 1`` check runs and a dead connection is
replaced before the request's first query. A connection whose peer vanished without a word (a
network partition) fails its next statement either way, as it would have failed the check.
"""

from __future__ import annotations

import select
from typing import Any

from django.db import NotSupportedError
from django.db.backends.postgresql import base


def idle_socket_is_quiet(connection: Any) -> bool:
    """Whether an idle psycopg connection is open with nothing waiting on its socket."""
    if connection.closed or connection.broken:
        return False
    try:
        fileno = connection.fileno()
    except Exception:  # noqa: BLE001 - a connection without a socket is not quiet
        return False
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return not poller.poll(0)


# A statement prepared on a connection fails for good once a migration changes the type of
# a column it returns (PostgreSQL will not change a prepared statement's result type). That
# connection is replaced at the end of the request or task that met the error, so one request
# fails instead of every later one on the connection (README "Scaling").
STALE_PREPARED_STATEMENT = "cached plan must not change result type"


def _replace_connection_on_stale_plan(
    execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    try:
        return execute(sql, params, many, context)
    except NotSupportedError as exc:
        if STALE_PREPARED_STATEMENT in str(exc):
            context["connection"].stale_prepared_statements = True
        raise


class DatabaseWrapper(base.DatabaseWrapper):
    # Whether this request's health check was a real round trip (``/api/health`` only trusts
    # that one as its database probe: chefops/health.py).
    health_check_probed = False
    # Set when a prepared statement of this connection went stale (above): closed at the next
    # request or task boundary.
    stale_prepared_statements = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(_replace_connection_on_stale_plan)

    def close_if_unusable_or_obsolete(self) -> None:
        self.health_check_probed = False
        if self.stale_prepared_statements and self.connection is not None:
            self.stale_prepared_statements = False
            # Closed first: a pool (DB_POOL) discards a closed connection instead of lending
            # it, with its stale statements, to the next request.
            self.connection.close()
            self.close()
            return
        super().close_if_unusable_or_obsolete()

    def close_if_health_check_failed(self) -> None:
        this: Any = self  # the health-check flags are not in django-stubs
        checked = this.connection is not None and this.health_check_enabled and not this.pool
        if checked and not this.health_check_done and idle_socket_is_quiet(this.connection):
            this.health_check_done, self.health_check_probed = True, False
            return
        if checked:
            self.health_check_probed = self.health_check_probed or not this.health_check_done
        super().close_if_health_check_failed()
