"""Per-tenant cache of the hot read endpoints, invalidated by version tokens on commit.

The contract list, a contract's service days, its weekly report and a company's finance
metrics are read far more often than they change (dashboards poll them). Each cached body is
stored with the version tokens it was computed under:

* ``rc:v:all`` — bumped by writes that can show in any tenant's reads (a company renamed, a
  daily job inserting days for every contract);
* ``rc:v:<company id>`` — bumped when a contract the company is a party of changes (its
  status, terms or weekdays: both parties are bumped), and by set-based service-day writers;
* narrower scopes a read may add (``scopes=``): ``rc:v:ct:<contract id>`` for a contract's
  service days and weekly report, and ``rc:v:sd:<company id>`` for figures computed over all
  the company's service days (finance metrics). A single service-day save bumps only these
  two (``invalidate_service_days``), so a confirmation leaves the company's other
  contracts, and its contract list, cached.

A read fetches its tokens and its entry in one ``get_many``; the entry is served only if it
was computed under the current tokens (and the same ``stamp``, e.g. today's date for figures
that depend on it). Tokens are read before the database is queried and bumped after the
writing transaction commits, so an entry computed from data older than a committed write can
never carry the tokens written after it (a reader between the commit and the bump stores
fresh data under old tokens: one needless miss later). Bumps come from the data layer
(``chefops/cachewrites.py``): model signals (``servicedays/signals.py``: every ``save`` of
ServiceDay, ContractWeekday, Contract and Company, and ``delete`` of the last two), the
``delete`` of weekdays and service days, the models' querysets (``update``, ``delete``,
``bulk_create``, ``bulk_update``) and the raw-SQL helper (``cachewrites.execute``: generation,
fallback). Contributors write through those; ``invalidate*`` below remain for writes the data
layer cannot see. A bump happens whenever a cache other processes read is configured,
whatever this process's ``READ_CACHE_SECONDS``. If a token key is evicted, a new token
replaces it and every entry computed under the old one is a miss; if a bump fails, entries
expire after ``READ_CACHE_SECONDS`` (60 s by default) at most.

Entries (not tokens) are also keyed by ``release()``, a digest of the code: a deploy never
serves a body shaped by the previous release.

Lookups are counted in ``chefops_read_cache_lookups_total{result="hit|miss|error"}``; misses
answered by a concurrent request's fill (single flight, below) also in ``result="waited"``.
On only when ``READ_CACHE_SECONDS`` > 0, which needs a cache shared by every process
(Redis): the web workers and the Celery worker must see the same tokens (the tests, one
process, use the local-memory cache). A cache outage degrades to computing every read.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from chefops.ops.metrics import READ_CACHE

logger = logging.getLogger(__name__)
T = TypeVar("T")

ALL = "rc:v:all"


def enabled() -> bool:
    return int(getattr(settings, "READ_CACHE_SECONDS", 0) or 0) > 0


def tenant_scope(company_id: Any) -> str:
    """The token of every read of a company."""
    return f"rc:v:{company_id}"


def contract_scope(contract_id: Any) -> str:
    """The token of one contract's service days (its range and weekly report reads)."""
    return f"rc:v:ct:{contract_id}"


def service_days_scope(company_id: Any) -> str:
    """The token of every service day of a company's contracts (its finance metrics)."""
    return f"rc:v:sd:{company_id}"


# Where the code that shapes cached values lives: the apps and the pinned libraries.
RELEASE_SOURCES = ("chefops", "companies", "contracts", "servicedays", "outbox")


@functools.cache
def release() -> str:
    """A digest of this release's Python sources and pinned requirements, computed once per
    process. Entries (never tokens) are keyed by it: a deploy that changes a response's shape
    or a model's columns never reads what the previous release stored, while both releases,
    running side by side during the deploy, still see each other's invalidations."""
    digest = hashlib.blake2b(digest_size=8)
    base = Path(settings.BASE_DIR)
    files = sorted(
        [path for name in RELEASE_SOURCES for path in (base / name).rglob("*.py")]
        + [base / "requirements.txt"]
    )
    for path in files:
        if path.is_file() and "tests" not in path.relative_to(base).parts:
            digest.update(str(path.relative_to(base)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _entry(company_id: Any, key: str) -> str:
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return f"rc:e:{release()}:{company_id}:{digest}"


def new_token() -> str:
    return uuid.uuid4().hex


def _current(key: str, known: Any) -> Any:
    if known is not None:
        return known
    cache.add(key, new_token(), timeout=None)  # atomic: concurrent first readers agree
    return cache.get(key)


def current_tokens(token_keys: Sequence[str], found: dict[str, Any]) -> tuple[Any, ...]:
    """The tokens under ``token_keys``, from ``found`` (a ``get_many`` that asked for them)
    or created where missing. An entry stored with these tokens is valid while they last."""
    return tuple(_current(key, found.get(key)) for key in token_keys)


def lookup_keys(company_id: Any, key: str, scopes: Sequence[str]) -> list[str]:
    """The token keys of a read, then its entry's key."""
    return [ALL, tenant_scope(company_id), *scopes, _entry(company_id, key)]


class Prefetch:
    """The keys a cached read will look up, fetched by authentication in the same round trip
    as the principal (``companies.principals.principal``): a hit then costs one ``MGET``.

    ``keys_for(company_id)`` names them for the company of the token's claim; ``cached``
    uses what was found only for that company and when it asked for no other key."""

    def __init__(self, keys_for: Callable[[Any], list[str]]) -> None:
        self._keys_for = keys_for
        self.company_id: Any = None
        self.requested: frozenset[str] = frozenset()
        self.found: dict[str, Any] | None = None

    def keys(self, company_id: Any) -> list[str]:
        keys = self._keys_for(company_id)
        self.company_id, self.requested = company_id, frozenset(keys)
        return keys

    def found_for(self, company_id: Any, keys: Sequence[str]) -> dict[str, Any] | None:
        if self.found is None or self.company_id != company_id:
            return None
        return self.found if self.requested.issuperset(keys) else None


def cached(
    company_id: Any,
    key: str,
    compute: Callable[[], T],
    *,
    scopes: Sequence[str] = (),
    stamp: str = "",
    cacheable: Callable[[T], bool] = lambda value: True,
    prefetch: Prefetch | None = None,
) -> T:
    """``compute()``, or its value cached for this company under ``key`` (e.g. the full URL)
    while no write touched the company, nor any of ``scopes``, since. Exceptions are not
    cached."""
    if not enabled():
        return compute()
    keys = lookup_keys(company_id, key, scopes)
    token_keys, entry_key = keys[:-1], keys[-1]
    try:
        found = prefetch.found_for(company_id, keys) if prefetch is not None else None
        if found is None:
            found = cache.get_many(keys)
        tokens = current_tokens(token_keys, found)
    except Exception:
        logger.warning("read cache unavailable: computing", exc_info=True)
        READ_CACHE.labels("error").inc()
        return compute()
    entry: Any = found.get(entry_key)
    if _fresh(entry, tokens, stamp):
        READ_CACHE.labels("hit").inc()
        return cast(T, entry[2])
    READ_CACHE.labels("miss").inc()
    lock_key = f"{entry_key}:fill:{hashlib.blake2b(repr((tokens, stamp)).encode()).hexdigest()}"
    try:
        leader = cache.add(lock_key, 1, timeout=FILL_LOCK_SECONDS)
    except Exception:
        logger.warning("read cache unavailable: computing without the fill lock", exc_info=True)
        leader = True
    if not leader:
        filled = _wait_for_fill(entry_key, lock_key, tokens, stamp)
        if filled is not _MISSING:
            return cast(T, filled)
    try:
        value = compute()
        if cacheable(value):
            try:
                cache.set(entry_key, (tokens, stamp, value), timeout=settings.READ_CACHE_SECONDS)
            except Exception:
                logger.warning("read cache unavailable: entry not stored", exc_info=True)
    finally:
        if leader:
            try:
                cache.delete(lock_key)
            except Exception:
                logger.warning("read cache unavailable: fill lock left to expire", exc_info=True)
    return value


def _fresh(entry: Any, tokens: tuple[Any, ...], stamp: str) -> bool:
    """Whether a stored entry was computed under these tokens and this stamp."""
    return entry is not None and entry[0] == tokens and entry[1] == stamp


def hit(keys: Sequence[str], stamp: str, found: dict[str, Any]) -> Any:
    """The value ``cached`` would serve from ``found``, a ``get_many`` of ``keys`` (a read's
    ``lookup_keys``), counted as a hit; None when ``cached`` would compute it (not counted: it
    will be)."""
    entry: Any = found.get(keys[-1])
    if not _fresh(entry, current_tokens(keys[:-1], found), stamp):
        return None
    READ_CACHE.labels("hit").inc()
    return entry[2]


# Single flight: when an entry is invalidated while many requests poll it, the first miss
# computes it and the others wait for its result (polling the entry) instead of all running
# the same queries at once. A waiter computes itself as soon as the leader is done without
# storing a value (an error response), or after FILL_WAIT_SECONDS (a slow leader); a lock
# outlives a crashed leader by at most FILL_LOCK_SECONDS.
FILL_LOCK_SECONDS = 5
FILL_WAIT_SECONDS = 0.25
_FILL_POLLS = (0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.04)  # then every 50 ms
_MISSING = object()


def _wait_for_fill(entry_key: str, lock_key: str, tokens: tuple[Any, ...], stamp: str) -> Any:
    deadline = time.monotonic() + FILL_WAIT_SECONDS
    for attempt in itertools.count():
        delay = _FILL_POLLS[attempt] if attempt < len(_FILL_POLLS) else 0.05
        if time.monotonic() + delay > deadline:
            break
        time.sleep(delay)
        try:
            found = cache.get_many([entry_key, lock_key])
        except Exception:
            logger.warning("read cache unavailable: computing", exc_info=True)
            return _MISSING
        entry: Any = found.get(entry_key)
        if _fresh(entry, tokens, stamp):
            READ_CACHE.labels("waited").inc()
            return entry[2]
        if lock_key not in found:
            return _MISSING  # the leader finished without storing a value
    return _MISSING


CARRIED_HEADERS = ("X-Total-Count", "Link")


def request_key(request: Request) -> str:
    """What a cached response is keyed by: the negotiated media type and the full URL (made
    once per request: the prefetch and the lookup both ask)."""
    key: str | None = getattr(request, "_read_cache_key", None)
    if key is None:
        key = f"{request.accepted_media_type} {request.build_absolute_uri()}"
        request._read_cache_key = key  # type: ignore[attr-defined]
    return key


def cached_response(
    request: Request,
    company_id: Any,
    build: Callable[[], Response],
    *,
    scopes: Sequence[str] = (),
    stamp: str = "",
) -> HttpResponse:
    """A view's 200 response through ``cached``: the rendered body and the paging headers,
    keyed by the negotiated media type and the full URL the client asked for (the ``Link``
    header repeats its host). A hit costs no query, no serializer and no rendering. Any other
    status is returned as built and never stored."""
    renderer = request.accepted_renderer
    media_type = request.accepted_media_type
    built: list[Response] = []

    def compute() -> tuple[bytes, dict[str, str]] | None:
        response = build()
        if response.status_code != 200:
            built.append(response)
            return None
        context = {"request": request, "response": response, "view": None}
        rendered = renderer.render(response.data, media_type, context)
        body = rendered if isinstance(rendered, bytes) else rendered.encode()
        headers = {name: response[name] for name in CARRIED_HEADERS if name in response}
        return body, headers

    value = cached(
        company_id,
        request_key(request),
        compute,
        scopes=scopes,
        stamp=stamp,
        cacheable=lambda found: found is not None,
        prefetch=getattr(request, "read_cache_prefetch", None),
    )
    if value is None:
        return built[0]
    return stored_response(renderer, value)


def stored_response(renderer: Any, value: tuple[bytes, dict[str, str]]) -> HttpResponse:
    """The response of a stored value of ``cached_response``: the body and paging headers."""
    body, headers = value
    response = HttpResponse(body, content_type=f"{renderer.media_type}; charset={renderer.charset}")
    for name, header in headers.items():
        response[name] = header
    return response


def bump_on_commit(keys: Iterable[str]) -> None:
    """After the current transaction commits (at once outside one): new tokens under ``keys``,
    so every entry stored with the old ones is a miss (``chefops/cachewrites.py``)."""
    from chefops import cachewrites

    cachewrites.bump_on_commit(keys)


def invalidate(company_ids: Iterable[Any]) -> None:
    """After the current transaction commits: the reads of these companies are stale."""
    from chefops import cachewrites

    cachewrites.contracts_changed([c for c in company_ids if c is not None])


def invalidate_all() -> None:
    """After the current transaction commits: every tenant's reads are stale."""
    from chefops import cachewrites

    cachewrites.contracts_changed(None)


def invalidate_service_days(contract_ids: Iterable[Any], company_ids: Iterable[Any]) -> None:
    """After the current transaction commits: the service-day reads of these contracts and
    the day-wide figures (finance metrics) of these companies (their parties) are stale."""
    from chefops import cachewrites

    cachewrites.service_days_changed(list(contract_ids), company_ids)
