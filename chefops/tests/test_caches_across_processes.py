"""The read cache and the principal cache across processes: a real gunicorn (two workers)
serves with both caches on Redis, and writes made by another process (as the admin, a
command or the Celery worker would) show on the very next request.

The server uses its own migrated SQLite database in a temporary directory and its own key
prefix on the suite's Redis.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chefops.testing.gunicorn import ROOT, running_site

pytestmark = [pytest.mark.slow, pytest.mark.redis]
PASSWORD = "password123"  # the demo seed's
METRICS_TOKEN = "metrics-token-for-tests"


class Site:
    def __init__(self, base: str, env: dict[str, str]) -> None:
        self.base, self.env = base, env

    def request(
        self, path: str, *, token: str | None = None, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.base}{path}", data=data, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as res:  # noqa: S310 - loopback
                return res.status, json.loads(res.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def cache_hits(self) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{self.base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=120) as res:  # noqa: S310 - loopback
            text = res.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "chefops_read_cache_lookups_total"
            and sample.labels.get("result") == "hit"
        )

    def login(self, email: str) -> str:
        status, body = self.request("/api/auth/login", body={"email": email, "password": PASSWORD})
        assert status == 200, body
        return str(body["accessToken"])

    def django(self, code: str, **env: str) -> str:
        """``code`` run by ``manage.py shell`` in a process of its own (``env`` on top)."""
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("caches")
    overrides = {
        "CACHE_KEY_PREFIX": f"chefops-test-{uuid.uuid4().hex[:8]}",
        "READ_CACHE_SECONDS": "300",
        "AUTH_CACHE_SECONDS": "300",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    with running_site(tmp, overrides, keep_redis=True, then=[["seed_demo"]]) as gunicorn:
        yield Site(gunicorn.base, gunicorn.env)


def test_writes_by_another_process_show_on_the_next_request(site: Site) -> None:
    token = site.login("techcorp@example.com")
    status, contracts = site.request("/api/contracts", token=token)
    assert status == 200 and contracts
    active = next(c for c in contracts if c["status"] == "ACTIVE")
    for _ in range(4):  # both workers cache the principal and the list
        assert site.request("/api/contracts", token=token) == (200, contracts)
    assert site.cache_hits() >= 3  # served from Redis, not computed

    # a contract paused by another process (its services, as the admin's action does)
    site.django(
        "import uuid\n"
        "from companies.models import User\n"
        "from contracts.services import contract_pause\n"
        "admin = User.objects.get(email='techcorp@example.com')\n"
        f"contract_pause(contract_id=uuid.UUID('{active['id']}'), actor=admin)\n"
    )
    for _ in range(4):
        status, after = site.request("/api/contracts", token=token)
        assert status == 200
        assert next(c for c in after if c["id"] == active["id"])["status"] == "PAUSED"

    # the user deactivated elsewhere: refused at once by every worker
    site.django(
        "from companies.models import User\n"
        "user = User.objects.get(email='techcorp@example.com')\n"
        "user.is_active = False\n"
        "user.save()\n"
    )
    for _ in range(4):
        assert site.request("/api/contracts", token=token)[0] == 401


def test_a_bare_update_by_a_process_with_its_caches_off_is_seen_at_once(site: Site) -> None:
    """An operator's one-off shell, with ``READ_CACHE_SECONDS=0 AUTH_CACHE_SECONDS=0`` and no
    invalidation call: a bare ``QuerySet.update()`` still bumps the tokens the running
    workers read (chefops/cachewrites.py)."""
    token = site.login("finanzas.manager@example.com")
    status, contracts = site.request("/api/contracts", token=token)
    assert status == 200 and contracts
    target = contracts[0]
    for _ in range(4):  # both workers cache the principal and the list
        assert site.request("/api/contracts", token=token) == (200, contracts)
    hits = site.cache_hits()
    assert site.request("/api/contracts", token=token) == (200, contracts)
    assert site.cache_hits() > hits  # served from Redis

    caches_off = {"READ_CACHE_SECONDS": "0", "AUTH_CACHE_SECONDS": "0"}
    assert (
        site.django(
            "import uuid\n"
            "from decimal import Decimal\n"
            "from django.conf import settings\n"
            "from contracts.models import Contract\n"
            "assert settings.READ_CACHE_SECONDS == settings.AUTH_CACHE_SECONDS == 0\n"
            f"print(Contract.objects.filter(id=uuid.UUID('{target['id']}'))"
            ".update(price_per_service=Decimal('123.45')))\n",
            **caches_off,
        ).splitlines()[-1]
        == "1"
    )
    for _ in range(4):
        status, after = site.request("/api/contracts", token=token)
        assert status == 200
        assert next(c for c in after if c["id"] == target["id"])["pricePerService"] == 123.45

    assert (
        site.django(
            "from companies.models import User\n"
            "print(User.objects.filter(email='finanzas.manager@example.com')"
            ".update(is_active=False))\n",
            **caches_off,
        ).splitlines()[-1]
        == "1"
    )
    for _ in range(4):
        assert site.request("/api/contracts", token=token)[0] == 401
