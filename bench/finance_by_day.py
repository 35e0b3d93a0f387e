"""Finance metrics' cost by the day of the month (issue #18), in-process, production settings.

    .venv/bin/python bench/finance_by_day.py [--month 2026-11] [--calls 400] [--repeat 3]
                                             [--root CHECKOUT]

The HTTP runs of ``bench/http_load.py`` only ever see the day they run on. The finance
metrics read windows that move with the date (this month so far, the previous month, the
upcoming week, the ten recent services), so this calls ``finance_metrics_for`` for the
benchmark's caterer (100 contracts) and client (50) with the clock on the 1st, 7th, 14th,
21st, 28th and last day of ``--month``, and prints the wall time per call (the median of
``--repeat`` runs of ``--calls`` calls: PostgreSQL's execution, the round trips and the
Python around them; prepared statements as in production). ``--root`` measures another
checkout's code on the same database (a baseline).

Uses the bench database of bench/http_load.py (``manage.py bench_data`` must have loaded it).
"""

from __future__ import annotations

import argparse
import calendar
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/chefops_bench_http"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--month", default="", help="YYYY-MM (default: the previous month)")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose code is measured")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from bench.request_cpu import DEFAULT_REDIS, production_env

    # The selector is called directly: no read cache, no principal cache on the way.
    prefix = f"chefops-bench-fin-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.environ.update(production_env(args.db_url, DEFAULT_REDIS, prefix))
    os.environ["DJANGO_SETTINGS_MODULE"] = "chefops.settings"
    sys.path.insert(0, args.root)
    # Celery's Django fix-up puts the working directory first on sys.path: run from the
    # measured checkout, or its modules would come from wherever this was started.
    os.chdir(args.root)
    import django

    django.setup()
    import time_machine

    from companies.models import User
    from servicedays.management.commands.bench_data import catering_email, client_email
    from servicedays.selectors import finance_metrics_for

    if args.month:
        year, month = (int(part) for part in args.month.split("-"))
    else:
        first = datetime.now(UTC).date().replace(day=1)
        year, month = (first.year, first.month - 1) if first.month > 1 else (first.year - 1, 12)
    last = calendar.monthrange(year, month)[1]
    days = [1, 7, 14, 21, 28, last]
    parties = {
        "caterer (100 contracts)": User.objects.get(email=catering_email(0)).company,
        "client (50 contracts)": User.objects.get(email=client_email(0)).company,
    }
    print(f"# finance_metrics_for, wall ms per call, {year}-{month:02d}; code at {args.root}")
    print("| party | " + " | ".join(f"day {d}" for d in days) + " |")
    print("|---|" + "---:|" * len(days))
    for label, company in parties.items():
        assert company is not None, label
        cells = []
        for day in days:
            now = datetime(year, month, day, 12, tzinfo=UTC)
            with time_machine.travel(now, tick=False):
                for _ in range(20):  # warm-up: the statements get prepared
                    finance_metrics_for(company=company, now=now)
                runs = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    for _ in range(args.calls):
                        finance_metrics_for(company=company, now=now)
                    runs.append((time.perf_counter() - started) * 1000 / args.calls)
            cells.append(f"{statistics.median(runs):.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    print(f"# load {os.getloadavg()[0]:.1f}; {date.today().isoformat()}")


if __name__ == "__main__":
    main()
