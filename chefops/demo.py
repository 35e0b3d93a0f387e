"""Demo data seeders run in order by `manage.py seed_demo` and `POST /api/seed`.

Each entry is a dotted path to a function ``seed(*, today: date) -> str`` that wipes and loads
its app's demo rows deterministically and returns a one-line summary.
"""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils.module_loading import import_string

SEEDERS: list[str] = [
    "companies.demo.seed",
    "contracts.demo.seed",
    "servicedays.demo.seed",
]


def run_seeders(*, today: date) -> list[str]:
    """Every seeder in order, in one transaction: a failing seeder leaves the old data."""
    with transaction.atomic():
        return [import_string(path)(today=today) for path in SEEDERS]
