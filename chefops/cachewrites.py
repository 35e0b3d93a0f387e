"""Cache invalidation at the data layer: every write to a row that feeds a cached read makes
that read stale once it commits, without the writer having to remember it.

Two caches answer from Redis while their version tokens hold (``chefops/readcache.py``: the
contract list, service-day ranges, weekly reports and finance metrics;
``companies/principals.py``: the user and company of a bearer token). The rows they are
computed from live in five models, and each write path of those models bumps the tokens it
can affect, after the writing transaction commits:

* ``Model.save`` (the services, the admin, fixtures, restores through the ORM) and
  ``delete`` of companies, users and contracts: ``post_save``/``post_delete`` receivers
  (``servicedays/signals.py``, ``companies/principals.py``); ``delete`` of a weekday or a
  service day: the model's ``delete`` (a delete receiver would stop Django from deleting
  their rows in bulk when a contract goes);
* ``QuerySet.update()``, ``delete()``, ``bulk_create()`` and ``bulk_update()``: the models'
  querysets (:class:`InvalidatingQuerySet`), also behind related managers
  (``contract.weekdays.all().delete()``) and the admin's bulk actions;
* raw SQL: :func:`execute`, the one way to write these tables with a cursor.

Precision. A bulk write names its rows (``bulk_*`` the objects; ``update``/``delete`` a
filter): when the filter pins them by primary key or, for weekdays and service days, by
contract (``pk=``, ``pk__in=``, ``contract=``, ``contract_id__in=[…]``, ANDed with anything
else), only the tokens of those rows' companies, contracts or users are bumped (the hot API
paths: logins, confirmations, term changes). Any other filter bumps the whole scope of the
model (every tenant's reads; every principal for a user or company update): a read of which
rows match, before the write, could miss a row another transaction makes match in between.

Whatever the writer's own settings. Tokens are bumped whenever a cache is configured that
other processes read (``CACHE_URL``), or this process caches (the tests' local memory),
even with ``READ_CACHE_SECONDS=0 AUTH_CACHE_SECONDS=0``: a one-off command or a restore run
from an operator's shell is seen by the running web workers at their next request.

A failed bump. Each bump is tried three times (a fresh connection each); one that still
fails is logged at ERROR with its keys and sent again with this process's next bump. The
entries it should have invalidated are then served until they expire: that is why cached
reads and principals are short-lived (``READ_CACHE_SECONDS``/``AUTH_CACHE_SECONDS``, 60 s by
default), and a cache outage long enough for this also makes the readers compute (they
cannot reach the cache either).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection, models, transaction
from django.db.models.expressions import Col
from django.db.models.lookups import Exact, In
from django.db.models.sql.where import AND

from chefops import readcache

if TYPE_CHECKING:
    from django.db.models.query import QuerySet

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=models.Model)

# The principal cache's tokens (companies/principals.py).
AUTH_ALL = "auth:v:all"


def auth_user_scope(user_id: Any) -> str:
    return f"auth:v:u:{user_id}"


def auth_company_scope(company_id: Any) -> str:
    return f"auth:v:c:{company_id}"


def active() -> bool:
    """Whether writes bump tokens: a cache other processes read is configured (``CACHE_URL``),
    or this process caches reads or principals. Never the writer's TTLs alone."""
    return (
        bool(getattr(settings, "CACHE_URL", ""))
        or readcache.enabled()
        or int(getattr(settings, "AUTH_CACHE_SECONDS", 0) or 0) > 0
    )


# --- Bumping ----------------------------------------------------------------------------------

BUMP_ATTEMPTS = 3
_BUMP_BACKOFF = (0.05, 0.2)
_unsent: set[str] = set()  # keys of failed bumps, sent again with the next one


def _send(keys: Sequence[str]) -> None:
    wanted = sorted(set(keys) | _unsent)
    for attempt in range(BUMP_ATTEMPTS):
        try:
            cache.set_many({key: readcache.new_token() for key in wanted}, timeout=None)
        except Exception:
            if attempt + 1 < BUMP_ATTEMPTS:
                time.sleep(_BUMP_BACKOFF[min(attempt, len(_BUMP_BACKOFF) - 1)])
                continue
            _unsent.update(wanted)
            logger.error(
                "cache invalidation failed for %s: entries computed before it are served "
                "until they expire (READ_CACHE_SECONDS / AUTH_CACHE_SECONDS); sent again with "
                "the next invalidation",
                wanted,
                exc_info=True,
            )
            return
        _unsent.difference_update(wanted)
        return


class AfterCommit:
    """A cache write waiting for a commit (``transaction.on_commit(obj.send)``)."""

    __slots__ = ()

    def send(self) -> None:
        raise NotImplementedError


class _PendingBump(AfterCommit):
    """The keys bumped by one transaction (or savepoint), written after it commits in one
    ``set_many``."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def send(self) -> None:
        _send(sorted(self.keys))


def only_test_case_blocks(conn: Any) -> bool:
    """Inside a test case's transaction only (pytest-django's ``db``): a write there is as
    good as committed (it would be outside the test), and the transaction never commits.
    The tests' conftest sends the bumps of nested blocks when the outermost one exits."""
    return all(getattr(block, "_from_testcase", False) for block in conn.atomic_blocks)


def send_pending(conn: Any) -> None:
    """Send the bumps waiting for ``conn``'s commit now (the tests' conftest, see above)."""
    kept = []
    for entry in conn.run_on_commit:
        pending = getattr(entry[1], "__self__", None)
        if isinstance(pending, AfterCommit):
            pending.send()
        else:
            kept.append(entry)
    conn.run_on_commit[:] = kept


def bump_on_commit(keys: Iterable[str]) -> None:
    """After the current transaction commits (at once outside one): new tokens under
    ``keys``, so every entry stored with the old ones is a miss. Unconditional: callers
    decide with :func:`active`."""
    wanted = set(keys)
    if not wanted:
        return
    conn = transaction.get_connection()
    if not conn.in_atomic_block or only_test_case_blocks(conn):
        _send(sorted(wanted))
        return
    savepoints = set(conn.savepoint_ids)
    for sids, func, _robust in conn.run_on_commit:
        pending = getattr(func, "__self__", None)
        # one registered at this very savepoint level: a rollback there drops both
        if isinstance(pending, _PendingBump) and sids == savepoints:
            pending.keys.update(wanted)
            return
    batch = _PendingBump()
    batch.keys.update(wanted)
    transaction.on_commit(batch.send, robust=True)


# --- What a write makes stale -----------------------------------------------------------------


def companies_changed(company_ids: Iterable[Any] | None) -> None:
    """Companies written (``None``: which ones is unknown). Their names show in their partners'
    reads (every tenant's reads are stale) and their status decides whether their users may
    authenticate (their principals are stale)."""
    if not active():
        return
    keys = [readcache.ALL]
    if company_ids is None:
        keys.append(AUTH_ALL)
    else:
        keys.extend(auth_company_scope(c) for c in company_ids if c is not None)
    bump_on_commit(keys)


def users_changed(user_ids: Iterable[Any] | None) -> None:
    """Users written (``None``: which ones is unknown): their principals are stale. No cached
    read shows a user."""
    if not active():
        return
    if user_ids is None:
        bump_on_commit([AUTH_ALL])
    else:
        bump_on_commit(auth_user_scope(u) for u in user_ids if u is not None)


def contracts_changed(company_ids: Iterable[Any] | None) -> None:
    """Contracts (or their weekdays) of these parties written (``None``: unknown): every read
    of those companies is stale (their contract lists; each contract's days and reports)."""
    if not active():
        return
    if company_ids is None:
        bump_on_commit([readcache.ALL])
    else:
        bump_on_commit(readcache.tenant_scope(c) for c in company_ids if c is not None)


def service_days_changed(
    contract_ids: Iterable[Any] | None, company_ids: Iterable[Any] = ()
) -> None:
    """Service days of these contracts written, ``company_ids`` their parties (``None``:
    unknown): the contracts' ranges and reports and the parties' finance metrics are stale."""
    if not active():
        return
    if contract_ids is None:
        bump_on_commit([readcache.ALL])
    else:
        bump_on_commit(
            [readcache.contract_scope(c) for c in contract_ids]
            + [readcache.service_days_scope(c) for c in company_ids if c is not None]
        )


def everything_changed() -> None:
    """Every cached read and principal is stale (a restore, a truncation)."""
    if active():
        bump_on_commit([readcache.ALL, AUTH_ALL])


def contract_parties(contract_ids: Iterable[Any]) -> set[Any]:
    """The companies party to these contracts (one query)."""
    from contracts.models import Contract

    wanted = {c for c in contract_ids if c is not None}
    if not wanted:
        return set()
    rows = Contract._base_manager.filter(pk__in=wanted).values_list(
        "catering_company_id", "client_company_id"
    )
    return {company for pair in rows for company in pair}


def parties_of_objects(objs: Iterable[Any]) -> set[Any]:
    """The parties of the contracts of these weekdays or service days: from the contracts they
    hold where loaded, else one query."""
    parties: set[Any] = set()
    unknown: set[Any] = set()
    for obj in objs:
        contract = obj._state.fields_cache.get("contract")
        if contract is not None:
            parties.update((contract.catering_company_id, contract.client_company_id))
        else:
            unknown.add(obj.contract_id)
    return parties | contract_parties(unknown)


# --- Which rows a filter pins -----------------------------------------------------------------


def pinned(queryset: QuerySet[Any], attname: str) -> set[Any] | None:
    """The values ``attname`` (a column of the queryset's own table) is restricted to by an
    ``=``/``IN`` of literal values ANDed into its filter; None when no such condition exists
    (then any row may match)."""
    query = queryset.query
    where = query.where
    if where.negated or (where.connector != AND and len(where.children) > 1):
        return None
    if query.combinator or query.is_sliced:
        return None
    base = query.base_table
    found: set[Any] | None = None
    for child in where.children:
        if not isinstance(child, Exact | In):
            continue
        lhs = child.lhs
        if not isinstance(lhs, Col) or lhs.alias != base or lhs.target.attname != attname:
            continue
        if hasattr(child.rhs, "resolve_expression"):
            continue  # a subquery or an expression: not literal values
        values = {child.rhs} if isinstance(child, Exact) else set(child.rhs)
        found = values if found is None else found & values
    return found


# --- The querysets ----------------------------------------------------------------------------

Stale = Callable[[], None]


class InvalidatingQuerySet(models.QuerySet[M]):
    """``update()``, ``delete()``, ``bulk_create()`` and ``bulk_update()`` that make the cached
    reads of the rows they write stale after commit. Subclasses say what is stale:
    ``_rows_stale`` for the rows the filter matches (called before the write, may query),
    ``_objects_stale`` for given objects; ``_delete_signals`` when ``post_delete`` receivers
    already cover deletes."""

    _delete_signals = False

    def _rows_stale(self, values: dict[str, Any]) -> Stale:
        raise NotImplementedError

    def _objects_stale(self, objs: Sequence[M], fields: Iterable[str] | None) -> Stale:
        raise NotImplementedError

    def update(self, **kwargs: Any) -> int:
        stale = self._rows_stale(kwargs)
        count = super().update(**kwargs)
        if count:
            stale()
        return count

    def delete(self) -> tuple[int, dict[str, int]]:
        if self._delete_signals:
            return super().delete()
        stale = self._rows_stale({})
        deleted = super().delete()
        if deleted[0]:
            stale()
        return deleted

    def bulk_create(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> list[M]:
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            self._objects_stale(created, None)()
        return created

    def bulk_update(
        self, objs: Iterable[M], fields: Iterable[str], batch_size: int | None = None
    ) -> int:
        objs, fields = list(objs), list(fields)
        stale = self._objects_stale(objs, fields) if objs else None
        count = super().bulk_update(objs, fields, batch_size=batch_size)
        if count and stale is not None:
            stale()
        return count


def _pinned_pks(queryset: QuerySet[Any]) -> set[Any] | None:
    return pinned(queryset, queryset.model._meta.pk.attname)


class CompanyQuerySet(InvalidatingQuerySet[M]):
    _delete_signals = True  # companies/principals.py, servicedays/signals.py

    def _rows_stale(self, values: dict[str, Any]) -> Stale:
        pks = _pinned_pks(self)
        return lambda: companies_changed(pks)

    def _objects_stale(self, objs: Sequence[M], fields: Iterable[str] | None) -> Stale:
        pks = [obj.pk for obj in objs]
        return lambda: companies_changed(pks)


class UserQuerySet(InvalidatingQuerySet[M]):
    _delete_signals = True  # companies/principals.py

    def _rows_stale(self, values: dict[str, Any]) -> Stale:
        pks = _pinned_pks(self)
        return lambda: users_changed(pks)

    def _objects_stale(self, objs: Sequence[M], fields: Iterable[str] | None) -> Stale:
        pks = [obj.pk for obj in objs]
        return lambda: users_changed(pks)


_PARTY_FIELDS = ("catering_company", "catering_company_id", "client_company", "client_company_id")


class ContractQuerySet(InvalidatingQuerySet[M]):
    _delete_signals = True  # servicedays/signals.py

    def _rows_stale(self, values: dict[str, Any]) -> Stale:
        pks = _pinned_pks(self)
        if pks is None or not active():
            return lambda: contracts_changed(None)
        parties = contract_parties(pks)  # before: a party changed by the update is stale too
        for name in _PARTY_FIELDS:
            if name in values:
                value = values[name]
                parties.add(getattr(value, "pk", value))
        return lambda: contracts_changed(parties)

    def _objects_stale(self, objs: Sequence[M], fields: Iterable[str] | None) -> Stale:
        if not active():
            return lambda: None
        parties: set[Any] = set()
        for obj in objs:
            parties.update((obj.catering_company_id, obj.client_company_id))  # type: ignore[attr-defined]
        if fields is not None and any(name in _PARTY_FIELDS for name in fields):
            parties |= contract_parties(obj.pk for obj in objs)  # the parties they had
        return lambda: contracts_changed(parties)


class _ContractRowsQuerySet(InvalidatingQuerySet[M]):
    """Rows of a contract (weekdays, service days): stale per contract."""

    def _changed(self, contract_ids: set[Any] | None, parties: set[Any]) -> None:
        raise NotImplementedError

    def _rows_stale(self, values: dict[str, Any]) -> Stale:
        if not active():
            return lambda: None
        contract_ids = pinned(self, "contract_id")
        if contract_ids is None and _pinned_pks(self) is not None:
            # pinned by primary key: their contracts cannot change (a row keeps its contract)
            contract_ids = set(self.values_list("contract_id", flat=True).order_by().distinct())
        if contract_ids is None:
            return lambda: self._changed(None, set())
        parties = contract_parties(contract_ids)
        return lambda: self._changed(contract_ids, parties)

    def _objects_stale(self, objs: Sequence[M], fields: Iterable[str] | None) -> Stale:
        if not active():
            return lambda: None
        contract_ids = {obj.contract_id for obj in objs}  # type: ignore[attr-defined]
        parties = parties_of_objects(objs)
        return lambda: self._changed(contract_ids, parties)


class ContractWeekdayQuerySet(_ContractRowsQuerySet[M]):
    def _changed(self, contract_ids: set[Any] | None, parties: set[Any]) -> None:
        # The weekdays show in both parties' contract lists.
        contracts_changed(None if contract_ids is None else parties)


class ServiceDayQuerySet(_ContractRowsQuerySet[M]):
    def _changed(self, contract_ids: set[Any] | None, parties: set[Any]) -> None:
        service_days_changed(contract_ids, parties)


# --- Raw SQL ----------------------------------------------------------------------------------


@dataclass
class RawWrite:
    rowcount: int  # -1: unknown (e.g. TRUNCATE)
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def execute(
    sql: str,
    params: Any,
    *,
    writes: Iterable[type[models.Model]],
    fetch: bool = False,
    stale: Callable[[RawWrite], None] | None = None,
) -> RawWrite:
    """Run a raw SQL write to the tables of ``writes`` (with ``fetch``, keep the rows it
    returns) and make the cached reads it can affect stale after commit: ``stale(result)``
    when given (precise: from the ``RETURNING`` rows or what the caller knows), else the whole
    scope of each written model. Nothing is bumped when no row was written."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        result = RawWrite(cursor.rowcount, list(cursor.fetchall()) if fetch else [])
    if result.rowcount != 0 or result.rows:
        if stale is not None:
            stale(result)
        else:
            for model in writes:
                model_changed(model)
    return result


def model_changed(model: type[models.Model]) -> None:
    """Any row of ``model`` may have changed: bump its whole scope."""
    name = model._meta.label_lower
    if name == "companies.company":
        companies_changed(None)
    elif name == "companies.user":
        users_changed(None)
    elif name in ("contracts.contract", "contracts.contractweekday"):
        contracts_changed(None)
    elif name == "servicedays.serviceday":
        service_days_changed(None)
