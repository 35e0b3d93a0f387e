"""The admin operations page: staff only, server-rendered, with every section."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from chefops.ops.jobs import record_job_success
from companies.models import User
from outbox.models import EventStatus, OutboxEvent

URL = "/admin/operations/"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _ops_dirs(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings.RUN_DIR = tmp_path / "run"
    settings.BACKUP_DIR = tmp_path / "backups"


@pytest.fixture
def staff_client(db: None) -> Client:
    staff = User.objects.create_user("ops@chefops.local", "pw-ops-12345", is_staff=True)
    client = Client()
    client.force_login(staff)
    return client


def test_operations_page_renders_every_section_for_staff(
    staff_client: Client, settings: Any
) -> None:
    backups = Path(settings.BACKUP_DIR)
    backups.mkdir()
    (backups / "chefops-20260301T020000Z.dump").write_bytes(b"x" * 2048)
    (backups / "chefops-20260302T020000Z.dump").write_bytes(b"x" * 4096)
    with time_machine.travel(NOW, tick=False):
        record_job_success("generate_service_days")
        for status in (EventStatus.DEAD, EventStatus.DEAD, EventStatus.PENDING):
            OutboxEvent.objects.create(
                event_type="contract.created",
                aggregate_type="contract",
                aggregate_id="c1",
                status=status,
                created_at=NOW - timedelta(minutes=7),
            )
        res = staff_client.get(URL)
    assert res.status_code == 200
    assert "admin/operations.html" in [t.name for t in res.templates]
    assert "admin/base_site.html" in [t.name for t in res.templates]
    html = res.content.decode()
    for section in (
        "ops-health",
        "ops-alerts",
        "ops-outbox",
        "ops-jobs",
        "ops-backup",
        "ops-tables",
    ):
        assert f'id="{section}"' in html
    assert 'href="/admin/outbox/outboxevent/?status__exact=DEAD"' in html
    ctx = res.context
    assert [name for name, _ok in ctx["health"]] == ["Database", "Cache", "Broker"]
    assert all(ok for _name, ok in ctx["health"])
    assert ctx["outbox"].dead == 2 and ctx["outbox"].backlog == 1
    alerts = {a.name: a for a in ctx["alerts"]}
    assert alerts["outbox_dead_events"].firing is True
    assert alerts["outbox_oldest_pending"].firing is True  # 7 minutes old
    assert alerts["job_stale:generate_service_days"].firing is False
    assert "FIRING" in html
    jobs = {j["name"]: j for j in ctx["jobs"]}
    assert jobs["generate_service_days"]["last_success"] == NOW
    assert jobs["retention_purge"]["last_success"] is None
    assert "2026-03-02 12:00:00" in html
    assert ctx["backup"]["name"] == "chefops-20260302T020000Z.dump"
    assert ctx["backup"]["size"] == "4.0 KiB"
    assert "chefops-20260302T020000Z.dump" in html and "10.0 h ago" in html
    assert "outbox_outboxevent" in [t["name"] for t in ctx["tables"]]


def test_operations_page_without_a_backup_says_so(staff_client: Client) -> None:
    res = staff_client.get(URL)
    assert res.status_code == 200
    assert res.context["backup"] is None
    assert "No backup in the backup directory" in res.content.decode()


@pytest.mark.django_db
def test_operations_page_is_refused_to_anonymous_and_non_staff_users(cast: Any) -> None:
    res = Client().get(URL)
    assert res.status_code == 302
    assert res["Location"] == f"/admin/login/?next={URL}"

    for user in (cast.catering.admin, cast.client.manager):
        client = Client()
        client.force_login(user)
        res = client.get(URL)
        assert res.status_code == 302
        assert res["Location"].startswith("/admin/login/")


def test_admin_index_links_to_the_operations_page(staff_client: Client) -> None:
    res = staff_client.get("/admin/")
    assert res.status_code == 200
    assert f'href="{URL}"' in res.content.decode()
