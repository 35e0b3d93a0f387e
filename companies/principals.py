"""The authenticated principal (a user with its company), loaded for every API request.

``load_principal`` reads both with one statement built once per database vendor. With
``AUTH_CACHE_SECONDS`` > 0 (needs a cache every process shares: Redis) ``principal`` keeps
their column values in the cache, validated by version tokens like the read cache
(``chefops/readcache.py``): a request then touches no database at all when its response is
cached too, which is what most dashboard polling is.

Each entry is stored with three tokens, read before the database:

* ``auth:v:all`` — bumped by database restores (``invalidate_all``);
* ``auth:v:u:<user id>`` — bumped after any change of the user commits: ``save``/``delete``
  (signals below: the services, the admin, password resets) and the users queryset's
  ``update``/``bulk_*`` (login and session-activity bookkeeping; ``chefops/cachewrites.py``);
* ``auth:v:c:<company id>`` — bumped after any ``save``/``delete`` of the company, or a
  queryset write to it (its status decides whether its users may authenticate), named after
  the token's ``companyId`` claim.

A change is therefore seen by the next request, exactly as without the cache: deactivating a
user or a company, a role change or a password reset take effect at once, whichever process
writes and whatever its own ``AUTH_CACHE_SECONDS``: writes through the models (``save``,
``delete``, and the querysets' ``update``/``delete``/``bulk_*``) or the raw-SQL helper bump the
tokens themselves (``chefops/cachewrites.py``). A cache outage falls back to the query.

Sessions. Every access token names its login session (``sid``); the request is refused once
that session is gone (logout, refresh-token reuse, password change or reset, deactivation of
the user, deletion in the admin or by the purge). Without the cache the principal statement
answers it too (an ``EXISTS`` on the session's primary key: still one query). With the cache
the same ``MGET`` reads ``auth:s:<sid>``:

* ``ended`` — written after the deleting transaction commits (a ``post_delete`` receiver, so
  every way of deleting a session counts), for as long as an access token lives: refused
  without touching the database;
* ``live`` — stored (``add``, never overwriting ``ended``) after the database confirmed the
  session, for ``AUTH_CACHE_SECONDS``: served without touching the database;
* missing (first request of a session, expired, evicted) — checked in the database.

A session ended while a request was checking it is still refused from the next request on:
``add`` cannot replace the ``ended`` written after the commit, and ``ended`` replaces a ``live``
stored before it. If writing ``ended`` fails (cache outage), a ``live`` marker already cached
may serve the session's access tokens until it expires (``AUTH_CACHE_SECONDS``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.expressions import Col
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chefops import cachewrites, readcache
from companies.models import AuthSession, Company, User

logger = logging.getLogger(__name__)

ALL = cachewrites.AUTH_ALL


class _PrincipalStatement:
    """``SELECT user.*, company.* … WHERE user.id = %s``, built once per database vendor.

    Equivalent to ``User.objects.select_related("company").filter(pk=…).first()`` for users
    with a company (the only ones that may authenticate), without compiling the query through
    the ORM on every request: that compilation cost more CPU than the query. Values go through
    the same column converters the ORM applies (SQLite returns UUIDs and datetimes as text),
    and instances are made with ``Model.from_db`` like any queryset row.
    """

    def __init__(self) -> None:
        self._built: dict[tuple[str, bool], tuple[str, list[tuple[int, Col, list[Any]]]]] = {}
        self._user_fields = [f.attname for f in User._meta.concrete_fields]
        self._company_fields = [f.attname for f in Company._meta.concrete_fields]
        # What the cache keeps: never the password hash (a principal from the cache loads it
        # from the database if it is ever read, e.g. to check the current password).
        self._cached_user_fields = [name for name in self._user_fields if name != "password"]

    def _build(self, with_session: bool) -> tuple[str, list[tuple[int, Col, list[Any]]]]:
        qn = connection.ops.quote_name
        fields: list[tuple[str, Any]] = [("u", f) for f in User._meta.concrete_fields] + [
            ("c", f) for f in Company._meta.concrete_fields
        ]
        converters = []
        for index, (alias, field) in enumerate(fields):
            col = field.get_col(alias)
            funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if funcs:
                converters.append((index, col, funcs))
        select = ", ".join(f"{alias}.{qn(field.column)}" for alias, field in fields)
        user_meta: Any = User._meta
        company_meta: Any = Company._meta
        if with_session:
            # Whether the token's session is still alive: its primary key, so one index probe.
            session_meta: Any = AuthSession._meta
            select += (
                f", EXISTS (SELECT 1 FROM {qn(session_meta.db_table)} s "  # noqa: S608
                f"WHERE s.{qn(session_meta.pk.column)} = %s "
                f"AND s.{qn(session_meta.get_field('user').column)} = "
                f"u.{qn(user_meta.pk.column)})"
            )
        sql = (
            f"SELECT {select} FROM {qn(user_meta.db_table)} u "  # noqa: S608 - model metadata
            f"JOIN {qn(company_meta.db_table)} c "
            f"ON c.{qn(company_meta.pk.column)} = u.{qn(user_meta.get_field('company').column)} "
            f"WHERE u.{qn(user_meta.pk.column)} = %s"
        )
        return sql, converters

    def load(self, user_id: uuid.UUID, session_id: uuid.UUID | None = None) -> User | None:
        """The user and company; with ``session_id``, None also when that session of the user
        is gone."""
        with_session = session_id is not None
        key = (connection.vendor, with_session)
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = self._build(with_session)
        sql, converters = built
        user_meta: Any = User._meta
        params = [user_meta.pk.get_db_prep_value(user_id, connection)]
        if with_session:
            session_meta: Any = AuthSession._meta
            params.insert(0, session_meta.pk.get_db_prep_value(session_id, connection))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        if with_session and not values.pop():
            return None
        for index, col, funcs in converters:
            for func in funcs:
                values[index] = func(values[index], col, connection)
        split = len(self._user_fields)
        return self._instantiate(self._user_fields, values[:split], values[split:])

    def values(self, user: User) -> tuple[list[Any], list[Any]]:
        """What the cache stores of ``user`` (and its company): every column but the password."""
        return (
            [getattr(user, name) for name in self._cached_user_fields],
            [getattr(user.company, name) for name in self._company_fields],
        )

    def instantiate(self, user_values: list[Any], company_values: list[Any]) -> User:
        """A principal from ``values`` (its password deferred)."""
        return self._instantiate(self._cached_user_fields, user_values, company_values)

    def _instantiate(
        self, user_fields: list[str], user_values: list[Any], company_values: list[Any]
    ) -> User:
        user = User.from_db(connection.alias, user_fields, user_values)
        company = Company.from_db(connection.alias, self._company_fields, company_values)
        user_meta: Any = User._meta
        user_meta.get_field("company").set_cached_value(user, company)
        return user


_principal = _PrincipalStatement()


def load_principal(user_id: uuid.UUID, session_id: uuid.UUID | None = None) -> User | None:
    """The user with its company loaded, or None (unknown user, or one without a company; with
    ``session_id``, also when that login session of the user has ended)."""
    return _principal.load(user_id, session_id)


def enabled() -> bool:
    return int(getattr(settings, "AUTH_CACHE_SECONDS", 0) or 0) > 0


_user_scope = cachewrites.auth_user_scope
_company_scope = cachewrites.auth_company_scope


def _session_key(session_id: Any) -> str:
    return f"auth:s:{session_id}"


SESSION_LIVE = "live"
SESSION_ENDED = "ended"


def principal(
    user_id: uuid.UUID,
    company_claim: Any,
    *,
    session_id: uuid.UUID | None = None,
    prefetch: readcache.Prefetch | None = None,
) -> User | None:
    """``load_principal(user_id, session_id)``, from the cache while neither the user nor the
    company named by the token's ``companyId`` claim changed and the session is known alive.
    A user whose company differs from the claim (moved since the token was issued) is always
    read from the database. The keys of ``prefetch`` (a cached read's lookup) are fetched in
    the same round trip."""
    if not enabled():
        return load_principal(user_id, session_id)
    try:
        company_id = uuid.UUID(str(company_claim))
    except ValueError:
        return load_principal(user_id, session_id)
    token_keys, entry_key, session_key = _keys(user_id, company_id, session_id)
    try:
        extra = prefetch.keys(company_id) if prefetch is not None else []
        own = [*token_keys, entry_key] + ([session_key] if session_key else [])
        found = cache.get_many([*own, *extra])
        if prefetch is not None:
            prefetch.found = found
        tokens = readcache.current_tokens(token_keys, found)
    except Exception:
        logger.warning("principal cache unavailable: querying", exc_info=True)
        return load_principal(user_id, session_id)
    session = found.get(session_key) if session_key else SESSION_LIVE
    if session == SESSION_ENDED:
        return None
    session_checked = session == SESSION_LIVE
    entry = found.get(entry_key)
    if entry is not None and entry[0] == tokens:
        user: User | None = _principal.instantiate(*entry[1])
        unchecked = None if session_checked else session_id
        if unchecked is not None and not _session_alive(user_id, unchecked):
            return None
    else:
        user = load_principal(user_id, session_id)  # checks the session in the same query
        if user is not None and user.company_id == company_id:
            try:
                cache.set(
                    entry_key,
                    (tokens, _principal.values(user)),
                    timeout=settings.AUTH_CACHE_SECONDS,
                )
            except Exception:
                logger.warning("principal cache unavailable: entry not stored", exc_info=True)
    if user is not None and not session_checked and session_key:
        try:
            cache.add(session_key, SESSION_LIVE, timeout=settings.AUTH_CACHE_SECONDS)
        except Exception:
            logger.warning("principal cache unavailable: session not stored", exc_info=True)
    return user


def _keys(
    user_id: uuid.UUID, company_id: uuid.UUID, session_id: uuid.UUID | None
) -> tuple[tuple[str, str, str], str, str | None]:
    """A principal's token keys, its entry's key and its session's key."""
    token_keys = (ALL, _user_scope(user_id), _company_scope(company_id))
    entry_key = f"auth:p:{readcache.release()}:{user_id}"  # column lists change with releases
    return token_keys, entry_key, _session_key(session_id) if session_id is not None else None


def cached_principal(
    user_id: uuid.UUID, company_id: uuid.UUID, session_id: uuid.UUID, extra: list[str]
) -> tuple[User, dict[str, Any]] | None:
    """What ``principal`` answers when the cache alone answers it: the user of a session known
    alive, cached under the current tokens, with the values of ``extra`` fetched in the same
    round trip. None whenever ``principal`` would query the database or refuse the session;
    a cache error is raised. The caller then goes through ``principal`` (chefops/readfast.py)."""
    token_keys, entry_key, session_key = _keys(user_id, company_id, session_id)
    found = cache.get_many([*token_keys, entry_key, session_key, *extra])
    if found.get(session_key) != SESSION_LIVE:
        return None
    entry = found.get(entry_key)
    if entry is None or entry[0] != readcache.current_tokens(token_keys, found):
        return None
    return _principal.instantiate(*entry[1]), found


def _session_alive(user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    return AuthSession.objects.filter(pk=session_id, user_id=user_id).exists()


def invalidate_user(user_id: Any) -> None:
    """After the current transaction commits: the cached principal of this user is stale.
    Writes through the models do it themselves (``chefops/cachewrites.py``)."""
    cachewrites.users_changed([user_id])


def invalidate_company(company_id: Any) -> None:
    """After the current transaction commits: the cached principals of its users are stale."""
    if cachewrites.active():
        cachewrites.bump_on_commit([_company_scope(company_id)])


def invalidate_all() -> None:
    """After the current transaction commits: every cached principal is stale (restores)."""
    cachewrites.users_changed(None)


@receiver([post_save, post_delete], sender=User)
def _user_changed(sender: Any, instance: User, **kwargs: Any) -> None:
    invalidate_user(instance.pk)


@receiver([post_save, post_delete], sender=Company)
def _company_changed(sender: Any, instance: Company, **kwargs: Any) -> None:
    invalidate_company(instance.pk)


class _EndedSessions(cachewrites.AfterCommit):
    """The sessions deleted in one transaction (or savepoint), marked ``ended`` in the cache
    after it commits, in one write."""

    __slots__ = ("ids",)

    def __init__(self) -> None:
        self.ids: list[Any] = []

    def send(self) -> None:
        # Longer than any access token of these sessions can still be presented.
        timeout = int(settings.ACCESS_TOKEN_LIFETIME.total_seconds()) + 60
        try:
            cache.set_many({_session_key(pk): SESSION_ENDED for pk in self.ids}, timeout=timeout)
        except Exception:
            logger.error(
                "principal cache: %d ended sessions not recorded; cached ones expire after "
                "AUTH_CACHE_SECONDS",
                len(self.ids),
                exc_info=True,
            )


def end_sessions(session_ids: Any) -> None:
    """After the current transaction commits: these sessions' access tokens are refused at
    their next request, without a database query (see "Sessions" above)."""
    if not cachewrites.active():
        return
    conn = transaction.get_connection()
    if not conn.in_atomic_block or cachewrites.only_test_case_blocks(conn):
        batch = _EndedSessions()
        batch.ids.extend(session_ids)
        batch.send()
        return
    savepoints = set(conn.savepoint_ids)
    for sids, func, _robust in conn.run_on_commit:
        pending = getattr(func, "__self__", None)
        # only one registered at this very savepoint level: a rollback there drops both
        if isinstance(pending, _EndedSessions) and sids == savepoints:
            pending.ids.extend(session_ids)
            return
    batch = _EndedSessions()
    batch.ids.extend(session_ids)
    transaction.on_commit(batch.send, robust=True)


@receiver(post_delete, sender=AuthSession)
def _session_deleted(sender: Any, instance: AuthSession, **kwargs: Any) -> None:
    end_sessions([instance.pk])
