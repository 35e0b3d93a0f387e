"""Where the Celery broker and the Django cache live in Redis, and whether Redis may evict
what they keep (README "Redis").

Layout. ``CELERY_BROKER_URL`` (queues, and the result backend) and ``CACHE_URL`` (the Django
cache: read-cache entries and version tokens, principals, session markers, throttle counters,
job stamps, single-flight locks) both default from ``REDIS_URL``: the broker keeps the
database ``REDIS_URL`` names (0 when it names none), so tasks queued before an upgrade are
still consumed after it; the cache takes the next database (the previous one for 15, the last
of Redis's default 16). A Redis with a single database (Redis Cluster, some managed offerings)
takes ``CACHE_URL`` set to the broker's URL: both then share database 0, which is safe because
the cache's ``clear()`` deletes only its ``KEY_PREFIX`` and nothing ever flushes a database.

Eviction. ``maxmemory-policy`` is one setting per Redis server, whatever the database. Judged
by :func:`eviction_problems` from what the server holds:

* ``allkeys-*`` may evict any key: a queued task (lost without a trace), a job stamp (the
  "job not run" alert then fires for a job that ran) or a version token.
* ``noeviction`` refuses every write at ``maxmemory``: fine for a broker alone, but a cache
  then fails its writes, the invalidations of writes included (cached reads stay stale until
  their entries expire), and, sharing a server with the broker, it starves the broker.
* ``volatile-*`` evicts only keys with an expiry: cached bodies, principals, session markers
  (a missing one is checked in the database), throttle counters (their window restarts:
  least recently used, so never an active client's), locks. Queues, version tokens and job
  stamps have none. ``volatile-lru`` is what a server holding the cache needs.

Pure functions except :func:`server_findings`, which asks the servers (``CONFIG GET``, which
managed Redis may refuse: then it says so and skips). Imported by the settings: standard
library only at import time.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES = ("redis", "rediss", "unix")
LAST_DEFAULT_DATABASE = 15  # Redis's `databases 16`
CONNECT_TIMEOUT_SECONDS = 2
RECOMMENDED_POLICY = "volatile-lru"


def is_redis_url(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


def database(url: str) -> int:
    """The database a redis-py URL selects: ``?db=`` wins over the path, as in redis-py; a
    ``unix://`` path is the socket's, never a database."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if "db" in query:
        return int(query["db"])
    path = parts.path.strip("/")
    if parts.scheme != "unix" and path:
        return int(path)
    return 0


def with_database(url: str, db: int) -> str:
    """``url`` selecting database ``db``; credentials, host and other options unchanged."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    if parts.scheme == "unix" or any(name == "db" for name, _ in query):
        query = [(name, value) for name, value in query if name != "db"] + [("db", str(db))]
        rebuilt = urlunsplit(parts._replace(query=urlencode(query)))
        if parts.scheme == "unix" and not parts.netloc:  # urlunsplit drops the empty "//"
            rebuilt = "unix://" + rebuilt.removeprefix("unix:")
        return rebuilt
    return urlunsplit(parts._replace(path=f"/{db}"))


def cache_database(broker_database: int) -> int:
    """The cache's database beside the broker's: the next one, the previous one for the last."""
    if broker_database >= LAST_DEFAULT_DATABASE:
        return broker_database - 1
    return broker_database + 1


def layout(redis_url: str, cache_url: str = "", broker_url: str = "") -> tuple[str, str]:
    """(cache URL, broker URL) from the three variables; an explicit one always wins, and
    each may equal the other (a single-database Redis). Empty: no Redis for that role."""
    for name, url in (("REDIS_URL", redis_url), ("CACHE_URL", cache_url)):
        if url and not is_redis_url(url):
            raise ValueError(f"{name} must be a redis://, rediss:// or unix:// URL, not {url!r}")
    if broker_url and not is_redis_url(broker_url):
        raise ValueError(
            f"CELERY_BROKER_URL must be a redis://, rediss:// or unix:// URL, not {broker_url!r}"
        )
    broker = broker_url or redis_url
    cache = cache_url
    if not cache and redis_url:
        cache = with_database(redis_url, cache_database(database(redis_url)))
    return cache, broker


def server(url: str) -> tuple[str, str, int]:
    """What identifies one Redis server (its ``maxmemory-policy``), whatever the database."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return ("unix", parts.path, 0)
    return (parts.scheme, parts.hostname or "localhost", parts.port or 6379)


def where(url: str) -> str:
    """``url`` without its credentials, fit for a log line."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path} db {database(url)}"
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}/{database(url)}"


Role = Literal["broker", "cache"]


def eviction_problems(policy: str, maxmemory: int, holds: AbstractSet[str]) -> list[str]:
    """What can go wrong with ``maxmemory-policy`` ``policy`` on a server that holds ``holds``;
    empty when nothing. ``maxmemory`` 0 means no limit: Redis then never evicts nor refuses."""
    if maxmemory == 0:
        return []
    problems = []
    if policy.startswith("allkeys-"):
        if "broker" in holds:
            problems.append(
                f"maxmemory-policy {policy} may evict the Celery broker's queued tasks, which "
                "are then lost without a trace"
            )
        if "cache" in holds:
            problems.append(
                f"maxmemory-policy {policy} may evict the cache's keys that have no expiry: job "
                "stamps (the stale-job alert then fires for a job that ran) and version tokens"
            )
    elif policy == "noeviction" and "cache" in holds:
        problem = (
            "maxmemory-policy noeviction refuses every cache write once maxmemory is reached, "
            "the invalidations of writes included: cached reads then stay stale until they expire"
        )
        if "broker" in holds:
            problem += ", and a full cache makes the broker refuse new tasks"
        problems.append(problem)
    elif not policy.startswith("volatile-") and policy != "noeviction":
        problems.append(f"unknown maxmemory-policy {policy!r}")
    return problems


def advice(holds: AbstractSet[str]) -> str:
    if holds == {"broker"}:
        return "set maxmemory-policy noeviction (or volatile-lru) on this server"
    return f"set maxmemory-policy {RECOMMENDED_POLICY} on this server"


@dataclass(frozen=True)
class Finding:
    level: Literal["warning", "info"]
    id: str
    message: str


def server_findings(cache_url: str, broker_url: str) -> list[Finding]:
    """Ask each Redis server that holds the cache or the broker for its eviction settings:
    one finding per problem, per server that cannot be read, per database it refuses."""
    import redis

    wanted: list[tuple[Role, str]] = [("broker", broker_url), ("cache", cache_url)]
    roles: dict[tuple[str, str, int], tuple[str, set[Role]]] = {}
    for role, url in wanted:
        if url and is_redis_url(url):
            roles.setdefault(server(url), (url, set()))[1].add(role)
    findings = []
    unreachable: set[tuple[str, str, int]] = set()
    for url, holds in roles.values():
        names = " and ".join(sorted(holds))
        label = f"Redis of the {names} ({where(url)})"
        try:
            policy, maxmemory = read_eviction_settings(url)
        except redis.ResponseError as exc:
            findings.append(
                Finding(
                    "info",
                    "chefops.I101",
                    f"{label}: cannot read maxmemory-policy (CONFIG GET refused: {exc}); "
                    f"skipped. Make sure the provider's policy is {_wanted(holds)} (README "
                    '"Redis").',
                )
            )
            continue
        except redis.RedisError as exc:
            findings.append(Finding("warning", "chefops.W103", f"{label}: unreachable ({exc})."))
            unreachable.add(server(url))
            continue
        for problem in eviction_problems(policy, maxmemory, holds):
            findings.append(
                Finding("warning", "chefops.W101", f"{label}: {problem}; {advice(holds)}.")
            )
    hints = {
        "CACHE_URL": "a Redis with a single database: set CACHE_URL to the broker's URL "
        '(both in database 0; README "Redis")',
        "CELERY_BROKER_URL": "a Redis with a single database: REDIS_URL (or CELERY_BROKER_URL) "
        "must name database 0",
    }
    for variable, url in (("CACHE_URL", cache_url), ("CELERY_BROKER_URL", broker_url)):
        if url and is_redis_url(url) and database(url) != 0 and server(url) not in unreachable:
            refused = _database_refused(url)
            if refused:
                findings.append(
                    Finding(
                        "warning",
                        "chefops.W102",
                        f"{variable} {where(url)}: the server refuses database {database(url)} "
                        f"({refused}); {hints[variable]}.",
                    )
                )
    return findings


def _wanted(holds: AbstractSet[str]) -> str:
    return "noeviction or volatile-*" if holds == {"broker"} else "volatile-lru (or volatile-*)"


def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )


def read_eviction_settings(url: str) -> tuple[str, int]:
    """(``maxmemory-policy``, ``maxmemory``) of the server of ``url``, by ``CONFIG GET``."""
    client = _client(with_database(url, 0))  # CONFIG is server-wide; db 0 always exists
    try:
        config = client.config_get("maxmemory*")
    finally:
        client.close()
    return str(config["maxmemory-policy"]), int(config["maxmemory"])


def _database_refused(url: str) -> str | None:
    """Why the server refuses to select ``url``'s database (out of range, a cluster), or None."""
    import redis

    client = _client(url)
    try:
        client.ping()
    except redis.ResponseError as exc:
        return str(exc)
    except redis.RedisError:
        return None  # unreachable: reported once per server
    finally:
        client.close()
    return None
