"""Every variable documented in README.md's Configuration table is read, and reaches what uses it.

The table is parsed; every variable named in it must have a check below, and every check must
name a documented variable: a new row without a check, or a check of a row that was removed,
fails. Each check puts a distinctive value (never the default) into the environment of a fresh
process and observes where the value must arrive: a Django setting, the Celery app's
configuration, the SMTP connection, the password hasher's thread pool, gunicorn's parsed
configuration, the staff-user command. A variable nobody reads leaves the default in place and
fails.

Processes are slow on a busy machine, so the checks share a few: one per profile
(development, production), one of production with the two Redis URLs instead of REDIS_URL,
and one that loads gunicorn.conf.py the way gunicorn does. The reverse holds too: a variable
the code reads must have a row.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from companies.models import User

ROOT = Path(__file__).resolve().parents[2]
PROBE_TIMEOUT_SECONDS = 240  # a busy 2-core machine takes several seconds to import Django


def documented_variables() -> list[str]:
    """The variables named in the first column of README.md's Configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    _, found, rest = text.partition("\n## Configuration\n")
    assert found, "README.md has no '## Configuration' section"
    section = rest.split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) > 2 and not set(cells[1].strip()) <= {"-"}:
            names += re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[1])
    return names


@dataclass(frozen=True)
class Check:
    """``value`` goes into the environment; ``observe`` (a Python expression evaluated in the
    probe process, helpers of PROBE in scope) must then equal ``expected``. ``{tmp}`` and
    ``{smtp_port}`` in either are filled in per run."""

    value: str
    observe: str
    expected: Any


# Python run by each probe process: argv[1] is "django" or "gunicorn", argv[2] the JSON
# {variable: expression}; prints {variable: observed value} as JSON.
PROBE = r"""
import json, logging, os, signal, sys
from pathlib import Path

MODE, EXPRESSIONS = sys.argv[1], json.loads(sys.argv[2])


def gunicorn_cfg():
    # gunicorn's own loader (as `gunicorn -c gunicorn.conf.py` runs it): the values gunicorn
    # ends up with, not merely the module's.
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = ["gunicorn", "-c", "gunicorn.conf.py", "chefops.wsgi"]
    return WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg


def console_handler():
    return next(h for h in logging.getLogger().handlers if h.get_name() == "console")


def sampling_rate():
    from chefops.logging import SamplingFilter

    return next(f for f in console_handler().filters if isinstance(f, SamplingFilter)).info_rate


def smtp_against_a_silent_server():
    # The server accepts the connection and never sends its banner: only a timeout ends the
    # wait. The alarm is a safety net that turns "no timeout at all" into an answer.
    from django.core.mail import get_connection

    connection = get_connection()
    if connection.timeout is None:
        return [None, "no timeout: the connection would wait forever"]

    def hung(*_):
        raise RuntimeError("still waiting for the SMTP banner after 60 s")

    signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        connection.open()
        outcome = "connected"
    except Exception as exc:
        outcome = str(exc)
    finally:
        signal.alarm(0)
    return [connection.timeout, "timed out" in outcome]


def cache_server():
    # Where the Django cache's client connects (built without connecting): host, port, db.
    from django.core.cache import cache

    kwargs = cache.client.get_client().connection_pool.connection_kwargs
    return [kwargs["host"], kwargs["port"], kwargs.get("db", 0)]


def multiprocess_metrics():
    from prometheus_client.multiprocess import MultiProcessCollector

    from chefops.ops.metrics import HTTP_REQUESTS, metrics_registry

    HTTP_REQUESTS.labels("GET", "probe", "2xx").inc()
    collectors = sorted(type(c).__name__ for c in metrics_registry()._collector_to_names)
    files = MultiProcessCollector(None, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    on_disk = [
        sample.value
        for family in files.collect()
        for sample in family.samples
        if sample.labels.get("route") == "probe"
    ]
    return [collectors, on_disk]


if MODE == "django":
    import django

    django.setup()
    from django.conf import settings

results = {}
for name, expression in EXPRESSIONS.items():
    try:
        results[name] = eval(expression)
    except Exception as exc:
        results[name] = f"error: {type(exc).__name__}: {exc}"
print("PROBE-RESULT " + json.dumps(results, default=str))
"""

_CELERY = "__import__('chefops.celery').celery.app.conf"
_DB = "settings.DATABASES['default']"
_STORAGE = "__import__('chefops.ops.storage').ops.storage"

# Development profile: no services needed (SQLite path and local-memory cache, never opened).
DEVELOPMENT: dict[str, Check] = {
    "JWT_SECRET": Check("probe-jwt-secret", "settings.JWT_SECRET", "probe-jwt-secret"),
    "DEBUG": Check("false", "settings.DEBUG", False),
    "CELERY_WORKER_CONCURRENCY": Check("7", f"{_CELERY}.worker_concurrency", 7),
    "CELERY_WORKER_MAX_TASKS_PER_CHILD": Check("77", f"{_CELERY}.worker_max_tasks_per_child", 77),
    "CELERY_TASK_SOFT_TIME_LIMIT": Check("111", f"{_CELERY}.task_soft_time_limit", 111),
    "CELERY_TASK_TIME_LIMIT": Check("222", f"{_CELERY}.task_time_limit", 222),
    "CELERY_TASK_ALWAYS_EAGER": Check("true", f"{_CELERY}.task_always_eager", True),
    "RUN_DIR": Check(
        "{tmp}/run",
        "[str(settings.RUN_DIR), settings.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in']]",
        ["{tmp}/run", "{tmp}/run/celery-queue"],
    ),
    "CORS_ALLOWED_ORIGINS": Check(
        "https://a.example,https://b.example",
        "settings.CORS_ALLOWED_ORIGINS",
        ["https://a.example", "https://b.example"],
    ),
    "CSRF_TRUSTED_ORIGINS": Check(
        "https://admin.example", "settings.CSRF_TRUSTED_ORIGINS", ["https://admin.example"]
    ),
    "FRONTEND_URL": Check(
        "https://app.example/",
        "__import__('companies.handlers').handlers.reset_password_link('t')",
        "https://app.example/reset-password?token=t",
    ),
    "EMAIL_URL": Check(
        "smtp://probe:secret@127.0.0.1:{smtp_port}",
        "[settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT,"
        " settings.EMAIL_HOST_USER]",
        ["django.core.mail.backends.smtp.EmailBackend", "127.0.0.1", "{smtp_port}", "probe"],
    ),
    # EMAIL_URL above points at a server that never answers.
    "EMAIL_TIMEOUT": Check("1.5", "smtp_against_a_silent_server()", [1.5, True]),
    "DEFAULT_FROM_EMAIL": Check(
        "Probe <ops@probe.example>",
        "__import__('outbox.email').email.message_id_for('e', 'h', 'r')",
        "<e.h.r@probe.example>",
    ),
    "ACCESS_TOKEN_MINUTES": Check(
        "42", "settings.ACCESS_TOKEN_LIFETIME.total_seconds()", 42 * 60.0
    ),
    "REFRESH_TOKEN_DAYS": Check("3", "settings.REFRESH_TOKEN_DAYS", 3),
    "REFRESH_TOKEN_REMEMBER_DAYS": Check("45", "settings.REFRESH_TOKEN_REMEMBER_DAYS", 45),
    "REFRESH_REUSE_GRACE_SECONDS": Check("7", "settings.REFRESH_REUSE_GRACE_SECONDS", 7),
    "AUTH_THROTTLE_IP_RATE": Check(
        "7/hour",
        "(lambda t: __import__('companies.rules').rules.parse_rate("
        "getattr(settings, t.AuthIPThrottle.setting_name)))"
        "(__import__('companies.throttling').throttling)",
        [7, 3600],
    ),
    "AUTH_THROTTLE_EMAIL_RATE": Check(
        "3/day",
        "(lambda t: __import__('companies.rules').rules.parse_rate("
        "getattr(settings, t.AuthIdentityThrottle.setting_name)))"
        "(__import__('companies.throttling').throttling)",
        [3, 86400],
    ),
    "NUM_PROXIES": Check(
        "2", "__import__('rest_framework.settings').settings.api_settings.NUM_PROXIES", 2
    ),
    # The release /api/health reports (CHEFOPS_VERSION wins over the platform's commit).
    "CHEFOPS_VERSION": Check(
        "probe-release-1",
        "[settings.RELEASE_VERSION, __import__('chefops.health').health.settings.RELEASE_VERSION]",
        ["probe-release-1", "probe-release-1"],
    ),
    "ARGON2_THREADS": Check(
        "3", "__import__('companies.hashers').hashers._hash_pool()._max_workers", 3
    ),
    "DEMO_SEED_ENABLED": Check("false", "settings.DEMO_SEED_ENABLED", False),
    "LOG_LEVEL": Check("WARNING", "logging.getLevelName(logging.getLogger().level)", "WARNING"),
    "LOG_JSON": Check("true", "type(console_handler().formatter).__name__", "JsonFormatter"),
    "LOG_INFO_SAMPLE_RATE": Check("0.25", "sampling_rate()", 0.25),
    "PROMETHEUS_MULTIPROC_DIR": Check(
        "{tmp}/metrics",
        "multiprocess_metrics()",
        [["MultiProcessCollector", "OperationsCollector", "WebhooksCollector"], [1.0]],
    ),
    "DB_SIZE_QUOTA_BYTES": Check("123456789", "settings.DB_SIZE_QUOTA_BYTES", 123456789),
    "WEBHOOK_ALLOW_HTTP": Check(
        "true",
        "__import__('webhooks.services').services.webhook_url_check('http://93.184.215.14/h')",
        "http://93.184.215.14/h",
    ),
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": Check(
        "true",
        "__import__('webhooks.services').services.webhook_url_check('https://127.0.0.1/h')",
        "https://127.0.0.1/h",
    ),
    "WEBHOOK_TIMEOUT_SECONDS": Check("2.5", "settings.WEBHOOK_TIMEOUT_SECONDS", 2.5),
    "WEBHOOK_MAX_FAILURES": Check("7", "settings.WEBHOOK_MAX_FAILURES", 7),
    "DISK_USAGE_PATH": Check(
        "{tmp}", "str(__import__('chefops.ops.reports').ops.reports.disk_usage_path())", "{tmp}"
    ),
    "ARCHIVE_DIR": Check("{tmp}/archive", "str(settings.ARCHIVE_DIR)", "{tmp}/archive"),
    "BACKUP_DIR": Check("{tmp}/backups", "str(settings.BACKUP_DIR)", "{tmp}/backups"),
    "BACKUP_RETENTION_DAYS": Check("9", "settings.BACKUP_RETENTION_DAYS", 9),
    # Building the storages connects nowhere (nothing listens on port 1).
    "ARCHIVE_STORAGE_URL": Check(
        "s3://probe-bucket/cold/archives?endpoint_url=http://127.0.0.1:1&region=eu-west-3",
        f"[type({_STORAGE}.archives()).__name__, {_STORAGE}.describe({_STORAGE}.archives()),"
        f" {_STORAGE}.archives().endpoint_url, {_STORAGE}.archives().region_name]",
        ["S3Storage", "s3://probe-bucket/cold/archives", "http://127.0.0.1:1", "eu-west-3"],
    ),
    "BACKUP_STORAGE_URL": Check(
        "file://{tmp}/cold-backups",
        f"{_STORAGE}.describe({_STORAGE}.backups())",
        "{tmp}/cold-backups",
    ),
    "PG_BIN_DIR": Check(
        "{tmp}/pg-bin",
        "__import__('chefops.ops.backups').ops.backups.pg_tool_path('pg_dump')",
        "{tmp}/pg-bin/pg_dump",
    ),
}

# Production profile: what it requires, plus what only it (or only Redis/PostgreSQL) reads.
# Nothing listens on port 1: settings need the URLs, never a connection.
PRODUCTION: dict[str, Check] = {
    "DJANGO_ENV": Check(
        "production", "[settings.DJANGO_ENV, settings.IS_PRODUCTION]", ["production", True]
    ),
    "SECRET_KEY": Check("probe-" + "Zq8!k" * 10, "settings.SECRET_KEY", "probe-" + "Zq8!k" * 10),
    "ALLOWED_HOSTS": Check(
        "chefops.probe.example,.probe.example",
        "settings.ALLOWED_HOSTS",
        ["chefops.probe.example", ".probe.example"],
    ),
    "DATABASE_URL": Check(
        "postgres://probe_user:pw@127.0.0.1:1/probe_db",
        f"[{_DB}['ENGINE'], {_DB}['NAME'], {_DB}['USER'], {_DB}['HOST'], {_DB}['PORT']]",
        ["chefops.db.postgresql", "probe_db", "probe_user", "127.0.0.1", 1],
    ),
    "CONN_MAX_AGE": Check("17", f"{_DB}['CONN_MAX_AGE']", 17),
    # 3 web workers x 4 threads + 2 Celery processes + beat = 15 persistent connections do
    # not fit in 12, so the pool would be on by default (chefops/dbbudget.py); DB_POOL=false
    # keeps it off (and CONN_MAX_AGE above holds: a pool excludes persistent connections),
    # and the check warns.
    "DB_POOL": Check("false", f"'pool' in {_DB}['OPTIONS']", False),
    "DB_CONNECTIONS_PER_INSTANCE": Check(
        "12",
        "[(m.id, 'DB_CONNECTIONS_PER_INSTANCE=12' in m.msg) for m in "
        "__import__('chefops.checks').checks.database_connection_budget()]",
        [["chefops.W010", True]],
    ),
    "DB_CONNECT_TIMEOUT": Check("5", f"{_DB}['OPTIONS']['connect_timeout']", 5),
    "DB_PREPARE_THRESHOLD": Check(
        "9",
        f"[{_DB}['OPTIONS']['prepare_threshold'], {_DB}['OPTIONS']['server_side_binding']]",
        [9, True],
    ),
    # The broker (and results) in the database REDIS_URL names, the cache in the next one.
    "REDIS_URL": Check(
        "redis://127.0.0.1:1/7",
        f"[cache_server(), {_CELERY}.broker_url, {_CELERY}.result_backend]",
        [["127.0.0.1", 1, 8], "redis://127.0.0.1:1/7", "redis://127.0.0.1:1/7"],
    ),
    "CACHE_KEY_PREFIX": Check(
        "probe-prefix",
        "__import__('django.core.cache').core.cache.cache.make_key('k')",
        "probe-prefix:1:k",
    ),
    "READ_CACHE_SECONDS": Check(
        "123",
        "[settings.READ_CACHE_SECONDS, __import__('chefops.readcache').readcache.enabled()]",
        [123, True],
    ),
    "AUTH_CACHE_SECONDS": Check(
        "77",
        "[settings.AUTH_CACHE_SECONDS, __import__('companies.principals').principals.enabled()]",
        [77, True],
    ),
    "SECURE_SSL_REDIRECT": Check("false", "settings.SECURE_SSL_REDIRECT", False),
    "SECURE_HSTS_SECONDS": Check("600", "settings.SECURE_HSTS_SECONDS", 600),
    "METRICS_TOKEN": Check("probe-metrics-token", "settings.METRICS_TOKEN", "probe-metrics-token"),
    "METRICS_PUBLIC": Check("true", "settings.METRICS_PUBLIC", True),
    # Production starts with NUM_PROXIES=0 only with this opt-out (NUM_PROXIES is checked in
    # the development group).
    "NO_REVERSE_PROXY": Check("true", "settings.NO_REVERSE_PROXY", True),
    # Without CHEFOPS_VERSION, the commit Railway built from.
    "RAILWAY_GIT_COMMIT_SHA": Check(
        "probe-railway-sha", "settings.RELEASE_VERSION", "probe-railway-sha"
    ),
    # Production refuses archives and backups on local disk without it (which this probe has).
    "ALLOW_LOCAL_ARCHIVES": Check("true", "settings.ALLOW_LOCAL_ARCHIVES", True),
}

REDIS: dict[str, Check] = {
    # Production on PostgreSQL with DB_POOL=true (this group's environment; README "Scaling").
    "DB_POOL_MIN": Check("2", f"{_DB}['OPTIONS']['pool']['min_size']", 2),
    "DB_POOL_MAX": Check(
        "7", f"[{_DB}['OPTIONS']['pool']['max_size'], {_DB}['CONN_MAX_AGE']]", [7, 0]
    ),
    "DB_POOL_TIMEOUT": Check("3.5", f"{_DB}['OPTIONS']['pool']['timeout']", 3.5),
    "DB_PGBOUNCER": Check(
        "true",
        f"[{_DB}['DISABLE_SERVER_SIDE_CURSORS'], {_DB}['OPTIONS']['prepare_threshold']]",
        [True, None],
    ),
    # With DB_PGBOUNCER=true above: parameters inlined by psycopg, nothing prepared.
    "DB_SERVER_SIDE_BINDING": Check(
        "false",
        f"['server_side_binding' in {_DB}['OPTIONS'], {_DB}['OPTIONS']['prepare_threshold']]",
        [False, None],
    ),
    "CACHE_URL": Check(
        "redis://127.0.0.1:1/5",
        "[settings.CACHES['default']['LOCATION'], cache_server()]",
        [["redis://127.0.0.1:1/5"], ["127.0.0.1", 1, 5]],
    ),
    "CELERY_BROKER_URL": Check(
        "redis://127.0.0.1:1/6",
        f"[{_CELERY}.broker_url, {_CELERY}.result_backend]",
        ["redis://127.0.0.1:1/6", "redis://127.0.0.1:1/6"],
    ),
}

GUNICORN: dict[str, Check] = {
    "PORT": Check("8765", "gunicorn_cfg().bind", ["0.0.0.0:8765"]),
    "WEB_CONCURRENCY": Check("5", "gunicorn_cfg().workers", 5),
    "GUNICORN_THREADS": Check("6", "gunicorn_cfg().threads", 6),
    "GUNICORN_WORKER_CONNECTIONS": Check("11", "gunicorn_cfg().worker_connections", 11),
    "GUNICORN_KEEPALIVE": Check("17", "gunicorn_cfg().keepalive", 17),
    "GUNICORN_TIMEOUT": Check("45", "gunicorn_cfg().timeout", 45),
    "GUNICORN_MAX_REQUESTS": Check("999", "gunicorn_cfg().max_requests", 999),
    "GUNICORN_MAX_REQUESTS_JITTER": Check("33", "gunicorn_cfg().max_requests_jitter", 33),
    "GUNICORN_ACCESSLOG": Check("-", "gunicorn_cfg().accesslog", "-"),
    "GUNICORN_LOGLEVEL": Check("warning", "gunicorn_cfg().loglevel", "warning"),
    "GUNICORN_PRELOAD": Check("false", "gunicorn_cfg().preload_app", False),
    "FORWARDED_ALLOW_IPS": Check(
        "10.0.0.1,10.0.0.2", "gunicorn_cfg().forwarded_allow_ips", ["10.0.0.1", "10.0.0.2"]
    ),
}


@dataclass(frozen=True)
class Group:
    mode: str  # "django" (after django.setup()) or "gunicorn" (no Django)
    checks: dict[str, Check]
    extra_env: dict[str, str]  # the profile, and what the extra checks need
    # label -> (expression, expected): defaults that matter, observed in the same process.
    extra_checks: dict[str, tuple[str, Any]]


GROUPS = {
    "development": Group("django", DEVELOPMENT, {"DJANGO_ENV": "development"}, {}),
    "production": Group(
        "django",
        PRODUCTION,
        # EMAIL_URL without EMAIL_TIMEOUT: the SMTP connection still gets the default.
        {"EMAIL_URL": "smtp+tls://u:p@127.0.0.1:1"},
        {
            "EMAIL_TIMEOUT default": (
                "__import__('django.core.mail').core.mail.get_connection().timeout",
                10.0,
            )
        },
    ),
    "gunicorn": Group("gunicorn", GUNICORN, {}, {}),
    # Production without REDIS_URL: the two Redis URLs named instead, each reaching its user.
    "redis": Group(
        "django",
        REDIS,
        {
            "DJANGO_ENV": "production",
            "SECRET_KEY": "probe-" + "Zq8!k" * 10,
            "DATABASE_URL": "postgres://probe_user:pw@127.0.0.1:1/probe_db",
            "ALLOWED_HOSTS": "probe.example",
            "METRICS_PUBLIC": "true",
            "NUM_PROXIES": "1",
            "ALLOW_LOCAL_ARCHIVES": "true",
            # The pool is off by default where persistent connections fit (as here): on, so
            # that its variables can be seen.
            "DB_POOL": "true",
        },
        {"read cache on": ("__import__('chefops.readcache').readcache.enabled()", True)},
    ),
}

# Read by the staff-user command when it runs (at deploy time), not at start-up: checked in
# this process against the test database (test_staff_user_command_reads_its_variables).
IN_PROCESS = {"DJANGO_ADMIN_EMAIL", "DJANGO_ADMIN_PASSWORD"}
# Read by a shell script, checked by the test that runs it: `make run` serves on HOST:PORT.
BY_SCRIPT_TESTS = {"HOST": "chefops/tests/test_run_local.py"}


def test_script_variables_are_exercised_by_their_tests() -> None:
    for name, test_file in BY_SCRIPT_TESTS.items():
        assert f"{name}=" in (ROOT / test_file).read_text(encoding="utf-8"), (name, test_file)
        assert f"${{{name}" in (ROOT / "bin" / "run-local.sh").read_text(encoding="utf-8")


def test_every_documented_variable_has_a_check() -> None:
    documented = documented_variables()
    assert len(documented) > 40, "the Configuration table was not found or not parsed"
    checked = (
        [name for group in GROUPS.values() for name in group.checks]
        + sorted(IN_PROCESS)
        + sorted(BY_SCRIPT_TESTS)
    )
    assert len(checked) == len(set(checked)), "a variable is checked twice"
    unchecked = sorted(set(documented) - set(checked))
    assert not unchecked, f"documented in README.md but not checked here: {unchecked}"
    undocumented = sorted(set(checked) - set(documented))
    assert not undocumented, f"checked here but not in README.md's Configuration: {undocumented}"


# Where a read hides: env.<cast>("NAME"...), os.environ.get("NAME"...), os.environ["NAME"],
# os.getenv("NAME"...).
_READS = re.compile(
    r"""(?:\benv\.\w+|os\.environ\.get|os\.environ\.setdefault|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]+)["']\]"""
)
# Not configuration: set by the code itself for its own processes.
_INTERNAL = re.compile(r"^(CHEFOPS_\w+|DJANGO_SETTINGS_MODULE)$")


def test_every_variable_the_code_reads_is_documented() -> None:
    sources = [ROOT / "gunicorn.conf.py"]
    for app in ("chefops", "companies", "contracts", "servicedays", "outbox"):
        sources += [p for p in (ROOT / app).rglob("*.py") if "tests" not in p.parts]
    read: dict[str, str] = {}
    for path in sources:
        for match in _READS.finditer(path.read_text(encoding="utf-8")):
            name = match.group(1) or match.group(2)
            if not _INTERNAL.match(name):
                read.setdefault(name, str(path.relative_to(ROOT)))
    assert len(read) > 30, f"the source scan found too little: {sorted(read)}"
    documented = set(documented_variables())
    undocumented = {name: f for name, f in read.items() if name not in documented}
    assert not undocumented, f"read but not documented in README.md's Configuration: {undocumented}"


def _fill(value: Any, subs: dict[str, str]) -> Any:
    """Replace {tmp}/{smtp_port} in strings, recursively; a string that is exactly one integer
    placeholder becomes an int (EMAIL_PORT is one)."""
    if isinstance(value, str):
        filled = value.format(**subs)
        return int(filled) if value == "{smtp_port}" else filled
    if isinstance(value, list):
        return [_fill(v, subs) for v in value]
    return value


@contextmanager
def _silent_smtp_server() -> Iterator[int]:
    """A listening socket that is never accepted from: the kernel completes the client's
    connection, and the SMTP banner never comes."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def _probe_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any documented variable (and without gunicorn's
    own CMD_ARGS), plus ``extra``."""
    documented = set(documented_variables())
    env = {k: v for k, v in os.environ.items() if k not in documented and k != "GUNICORN_CMD_ARGS"}
    env["DJANGO_SETTINGS_MODULE"] = "chefops.settings"
    env.update(extra)
    return env


@pytest.mark.parametrize("group_name", sorted(GROUPS))
def test_documented_variables_are_read(group_name: str, tmp_path: Path) -> None:
    group = GROUPS[group_name]
    (tmp_path / "metrics").mkdir()
    with _silent_smtp_server() as smtp_port:
        subs = {"tmp": str(tmp_path), "smtp_port": str(smtp_port)}
        env = _probe_env(
            {
                **group.extra_env,
                **{name: str(_fill(check.value, subs)) for name, check in group.checks.items()},
            }
        )
        expressions = {name: check.observe for name, check in group.checks.items()}
        expressions.update({label: expr for label, (expr, _) in group.extra_checks.items()})
        observed = run_probe(group.mode, expressions, env, ROOT)

    expected = {name: _fill(check.expected, subs) for name, check in group.checks.items()}
    expected.update({label: want for label, (_, want) in group.extra_checks.items()})
    wrong = {
        name: {"set": env.get(name), "expected": want, "observed": observed.get(name)}
        for name, want in expected.items()
        if observed.get(name) != json.loads(json.dumps(want))
    }
    assert not wrong, "not read, or not reaching what uses it:\n" + json.dumps(wrong, indent=1)


def run_probe(mode: str, expressions: dict[str, str], env: dict[str, str], cwd: Path) -> Any:
    """PROBE in a fresh process: {name: observed value} of each expression."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode, json.dumps(expressions)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
        check=False,
    )
    lines = [x for x in result.stdout.splitlines() if x.startswith("PROBE-RESULT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("PROBE-RESULT "))


@pytest.mark.django_db
def test_staff_user_command_reads_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ADMIN_EMAIL", "Probe.Staff@Example.com")
    monkeypatch.setenv("DJANGO_ADMIN_PASSWORD", "probe-staff-pass-93")
    call_command("ensure_staff_user")
    user = User.objects.get(email="probe.staff@example.com")
    assert user.is_staff and user.is_superuser
    assert user.check_password("probe-staff-pass-93")


def test_gunicorn_reads_the_dotenv_file_like_the_settings(tmp_path: Path) -> None:
    """README: a .env file in the project root is read. gunicorn.conf.py runs before Django
    does, so it reads the file itself; the environment still wins over the file."""
    shutil.copy(ROOT / "gunicorn.conf.py", tmp_path / "gunicorn.conf.py")
    (tmp_path / "chefops").mkdir()  # the worker class it loads by path
    shutil.copy(ROOT / "chefops" / "serving.py", tmp_path / "chefops" / "serving.py")
    (tmp_path / ".env").write_text("PORT=8766\nGUNICORN_THREADS=9\n", encoding="utf-8")
    env = _probe_env({"GUNICORN_THREADS": "5"})
    expressions = {"bind": "gunicorn_cfg().bind", "threads": "gunicorn_cfg().threads"}
    assert run_probe("gunicorn", expressions, env, tmp_path) == {
        "bind": ["0.0.0.0:8766"],
        "threads": 5,
    }
