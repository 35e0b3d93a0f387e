"""Demo data seeders run in order by `manage.py seed_demo` and `POST /api/seed`.

Each entry is a dotted path to a function ``seed(*, today: date) -> str`` that wipes and loads
its app's demo rows deterministically and returns a one-line summary.
"""

SEEDERS: list[str] = [
    "companies.demo.seed",
]
