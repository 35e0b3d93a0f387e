"""Cached entries are keyed by the release (chefops.readcache.release): a deploy that changes
the code never reads what the previous code stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chefops import readcache


@pytest.fixture
def tree(tmp_path: Path, settings: Any) -> Iterator[Path]:
    for name in readcache.RELEASE_SOURCES:
        (tmp_path / name / "tests").mkdir(parents=True)
        (tmp_path / name / "views.py").write_text(f"# {name}\n")
        (tmp_path / name / "tests" / "test_views.py").write_text("# a test\n")
    (tmp_path / "requirements.txt").write_text("Django==5.2.19\n")
    settings.BASE_DIR = tmp_path
    readcache.release.cache_clear()
    yield tmp_path
    readcache.release.cache_clear()


def release_of() -> str:
    readcache.release.cache_clear()
    return readcache.release()


def test_the_release_follows_the_sources_and_the_requirements(tree: Path) -> None:
    first = release_of()
    assert first == release_of()  # deterministic
    (tree / "companies" / "tests" / "test_views.py").write_text("# another test\n")
    assert release_of() == first  # tests do not shape responses
    (tree / "contracts" / "views.py").write_text("# contracts, changed\n")
    changed = release_of()
    assert changed != first
    (tree / "requirements.txt").write_text("Django==5.2.20\n")
    assert release_of() not in (first, changed)


def test_entries_carry_the_release_and_tokens_do_not(tree: Path) -> None:
    keys = readcache.lookup_keys("c1", "GET /api/contracts", ["rc:v:ct:k1"])
    assert keys[:3] == [readcache.ALL, "rc:v:c1", "rc:v:ct:k1"]
    assert keys[-1].startswith(f"rc:e:{readcache.release()}:c1:")
    (tree / "servicedays" / "views.py").write_text("# changed\n")
    readcache.release.cache_clear()
    assert readcache.lookup_keys("c1", "GET /api/contracts", ["rc:v:ct:k1"])[-1] != keys[-1]
