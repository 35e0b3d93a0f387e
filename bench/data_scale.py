"""Issue #18, "cost does not grow with data": the data endpoints at 100k, 1M and 10M service days.

    .venv/bin/python bench/data_scale.py [--sizes 100k,1m,10m] [--duration 10] [--repeat 3]
        [--reload] [--drop]

For each size its own database (``<--db-prefix>_<size>``, e.g. chefops_bench_scale_10m),
migrated and loaded with ``manage.py bench_data`` (kept between runs unless --reload; dropped
at the end with --drop). The sizes grow the way a real service grows: the same 10,000 ACTIVE
contracts (the generation target's) and the same measured tenants (catering 0 with 100
contracts, client 0 with 50), with a deeper history (10 weekdays per contract at 100k, 100 at
1M, 500 — two years — at 10M; the measured contracts at least 50) and, at 10M, twice the
companies and 10,000 TERMINATED contracts of tenants that left, their history kept. Rows go in
date by date (``--date-order``), as years of daily generation lay them out.

Each size is prepared in a child process (http_load.prepare(): the generation job for the
10,000 contracts on an emptied window, timed, then VACUUM ANALYZE), then one gunicorn per size
serves it in the production settings with the read cache off (http_load.server_env), all up
at once: the measured runs alternate between the sizes (endpoint by endpoint, --repeat rounds,
the run with the median p95 reported) so that other work on the machine weighs on every size
alike. Writes bench/results/scale.md; exits non-zero when, for one of the issue's four
endpoints, p95 at the largest size is over 1.25 x p95 at the smallest, or when a generation
took over 5 s.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import http_load as hl

# The four data endpoints are judged; the caterer's finance metrics are measured too.
JUDGED = (
    "contract list (caterer, 100 contracts)",
    "service-day range (30 days)",
    "weekly report",
    "finance metrics",
)
MAX_P95_GROWTH = 1.25
MAX_GENERATION_MS = 5000
BUSY_SAMPLE_S = 3.0


def cpu_busy_share(seconds: float = BUSY_SAMPLE_S) -> float:
    """Share of all cores busy over ``seconds`` (/proc/stat). Sampled while this harness is
    idle (servers up, no load driver), it is the other work on the machine."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


@dataclass(frozen=True)
class Size:
    label: str
    service_days: int
    companies: int = 1000
    contracts: int = 10000  # ACTIVE: the generation job's contracts at every size
    past_contracts: int = 0  # TERMINATED, with their history

    def bench_data_args(self) -> list[str]:
        return [
            "--companies",
            str(self.companies),
            "--contracts",
            str(self.contracts),
            "--past-contracts",
            str(self.past_contracts),
            "--service-days",
            str(self.service_days),
            "--date-order",
        ]


SIZES = {
    s.label: s
    for s in (
        Size("100k", 100_000),
        Size("1m", 1_000_000),
        Size("10m", 10_000_000, companies=2000, past_contracts=10000),
    )
}


def shown(size: str) -> str:
    """100k, 1M, 10M (the database names and --sizes take lower case)."""
    return size.replace("m", "M")


def db_url(args: argparse.Namespace, size: str) -> str:
    return f"{args.pg}/{args.db_prefix}_{size}"


def prepare_size(args: argparse.Namespace) -> None:
    """Child process: create, migrate and load one size's database, time the generation job
    (http_load.prepare) and write what the measurement needs as JSON."""
    size = SIZES[args.prepare]
    url = db_url(args, size.label)
    env = hl.setup_env(url)
    hl.ensure_database(url)
    hl.run([hl.PYTHON, "manage.py", "migrate", "--noinput"], env)
    load = ["--reset"] if args.reload else ["--if-missing"]
    cmd = [hl.PYTHON, "manage.py", "bench_data", *size.bench_data_args(), *load]
    print(hl.run(cmd, env, timeout=3600), flush=True)
    hl.django_setup(env)
    ctx = hl.prepare(env)
    data = ctx["data"]
    if data["contracts"] != size.contracts + size.past_contracts or not (
        size.service_days <= data["service_days"] <= size.service_days + 10 * size.contracts
    ):
        raise SystemExit(
            f"{url} holds another data set ({data}): run with --reload to load size {size.label}"
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_database_size(current_database()), "
            "pg_table_size('servicedays_serviceday'), pg_indexes_size('servicedays_serviceday')"
        )
        database, table, indexes = cursor.fetchone()
    gen, rerun = ctx["generation"], ctx["generation_rerun"]
    out = {
        key: ctx[key]
        for key in ("client_token", "caterer_token", "client_contracts", "from", "to", "monday")
    }
    out.update(
        data=data,
        sizes_mib={
            "database": database / 2**20,
            "table": table / 2**20,
            "indexes": indexes / 2**20,
        },
        generation={
            "contracts": gen.active_contracts,
            "inserted": gen.inserted,
            "ms": gen.duration_ms,
            "rerun_ms": rerun.duration_ms,
        },
    )
    Path(args.json).write_text(json.dumps(out))
    print(gen.line(), flush=True)


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: not a bench database")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def markdown(
    sizes: list[str],
    prepared: dict[str, dict[str, Any]],
    results: dict[str, dict[str, hl.Result]],
    verdicts: dict[str, tuple[float, bool]],
    ctx: dict[str, Any],
    args: argparse.Namespace,
) -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    first, last = sizes[0], sizes[-1]
    lines = [
        "# Cost as data grows (bench/data_scale.py, issue #18)",
        "",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}; load driver, gunicorn and PostgreSQL on it",
        f"- load driver: {ctx['driver_label']}; {args.concurrency} keep-alive connections, "
        f"{args.repeat} runs of {args.duration:.0f} s per endpoint and size, the runs "
        "alternating between the sizes; the run with the median p95 is shown",
        "- server: one gunicorn per size (gunicorn.conf.py), DJANGO_ENV=production, read cache "
        "off (READ_CACHE_SECONDS=0), principal cache on, as bench/http_load.py",
        f"- machine: load average (1 min) {ctx['load_before']:.1f} before the first run, "
        f"{ctx['load_after']:.1f} after the last; other work on the cores while this harness "
        "was idle (sampled before each endpoint's runs, /proc/stat): "
        + ", ".join(f"{100 * b:.0f} %" for b in ctx["busy"])
        + (
            " — **loaded machine**: other sessions' work shared the two cores, so the "
            "figures are inflated and noisier than on a quiet machine"
            if max(ctx["busy"], default=0) >= args.loaded_threshold
            else ""
        ),
        "",
        "| size | companies | contracts (active + terminated) | service days | database MiB "
        "| service-day table + indexes MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        spec, p = SIZES[size], prepared[size]
        lines.append(
            f"| {shown(size)} | {p['data']['companies']:,} | {spec.contracts:,} + "
            f"{spec.past_contracts:,} | {p['data']['service_days']:,} | "
            f"{p['sizes_mib']['database']:,.0f} | {p['sizes_mib']['table']:,.0f} + "
            f"{p['sizes_mib']['indexes']:,.0f} |"
        )
    head = " | ".join(
        f"{shown(s)} req/s | {shown(s)} p50 / p95 / p99 ms | {shown(s)} web CPU ms/req"
        for s in sizes
    )
    lines += [
        "",
        f"| endpoint | {head} | p95 {shown(last)} ÷ {shown(first)} | target |",
        "|---|" + "---:|---:|---:|" * len(sizes) + "---:|---|",
    ]
    for name, by_size in results.items():
        cells = " | ".join(
            f"{r.rps:,.0f} | {r.pct(50):.1f} / {r.pct(95):.1f} / {r.pct(99):.1f} | "
            f"{r.server_cpu_ms:.1f}"
            for r in (by_size[s] for s in sizes)
        )
        ratio, met = verdicts[name]
        target = (
            f"≤ {MAX_P95_GROWTH:g}: {'ok' if met else 'MISSED'}" if name in JUDGED else "(shown)"
        )
        lines.append(f"| {name} | {cells} | {ratio:.2f} | {target} |")
    lines += [
        "",
        "| size | generation job, 8-day window | contracts | rows inserted | duration "
        "| idempotent re-run | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for size in sizes:
        g = prepared[size]["generation"]
        ok = g["ms"] <= MAX_GENERATION_MS
        lines.append(
            f"| {shown(size)} | every ACTIVE contract | {g['contracts']:,} | {g['inserted']:,} | "
            f"{g['ms']:,} ms | {g['rerun_ms']:,} ms | ≤ 5 s: {'ok' if ok else 'MISSED'} |"
        )
    lines += [
        "",
        "web CPU ms/req: CPU time of that size's gunicorn workers per request (other work on "
        "the machine inflates it far less than the latencies; PostgreSQL's share is not in it).",
        "",
        "p95 of each run (ms): "
        + "; ".join(
            f"{name} "
            + ", ".join(
                f"{shown(s)} {'/'.join(f'{p:.1f}' for p in r.p95_runs)}" for s, r in by.items()
            )
            for name, by in results.items()
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1m,10m", help=f"of {', '.join(SIZES)}")
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    )
    parser.add_argument("--db-prefix", default="chefops_bench_scale")
    parser.add_argument("--port", type=int, default=8775, help="first of one port per size")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per endpoint and size")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="as bench/http_load.py: keys under prefixes of this run, removed after it",
    )
    parser.add_argument("--reload", action="store_true", help="reload the data of every size")
    parser.add_argument("--drop", action="store_true", help="drop the size databases at the end")
    parser.add_argument(
        "--loaded-threshold",
        type=float,
        default=0.15,
        help="share of the cores others keep busy from which the report says 'loaded machine'",
    )
    parser.add_argument("--output", default=str(hl.ROOT / "bench" / "results" / "scale.md"))
    parser.add_argument("--prepare", choices=sorted(SIZES), help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.max_requests = 0  # wrk has no request cap (http_load.measure_once passes it on)
    if "bench" not in args.db_prefix:
        raise SystemExit("the database prefix must contain 'bench'")
    if args.prepare:
        prepare_size(args)
        return
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        raise SystemExit(f"unknown sizes {unknown}: choose among {', '.join(SIZES)}")

    prepared: dict[str, dict[str, Any]] = {}
    work = tempfile.TemporaryDirectory(prefix="chefops-scale-")
    servers: dict[str, Any] = {}
    prefixes: list[str] = []
    results: dict[str, dict[str, hl.Result]] = {}
    ctx: dict[str, Any] = {}
    try:
        for size in sizes:
            print(f"=== {size}: {db_url(args, size)}", flush=True)
            out = Path(work.name) / f"{size}.json"
            cmd = [hl.PYTHON, __file__, "--prepare", size, "--json", str(out)]
            cmd += ["--pg", args.pg, "--db-prefix", args.db_prefix]
            cmd += ["--reload"] if args.reload else []
            if subprocess.run(cmd, cwd=hl.ROOT, check=False).returncode != 0:
                raise SystemExit(f"preparing size {size} failed")
            prepared[size] = json.loads(out.read_text())

        wrk = shutil.which("wrk")
        if not wrk:
            raise SystemExit("wrk is not on PATH (bin/ensure-wrk.sh installs it)")
        ctx["driver_label"] = (
            f"wrk {hl.wrk_version(wrk)} (C, {hl.wrk_threads(args.concurrency)} threads)"
        )
        ctx["load_before"] = os.getloadavg()[0]
        ports = {size: args.port + i for i, size in enumerate(sizes)}
        for size in sizes:
            prefix = hl.bench_cache_prefix(f"scale-{size}")
            prefixes.append(prefix)
            env = hl.server_env(
                db_url(args, size), ports[size], redis_url=args.redis_url, cache_prefix=prefix
            )
            servers[size] = hl.start_gunicorn(env, ports[size])
        endpoints = {size: hl.data_endpoints(prepared[size]) for size in sizes}
        ctx["busy"] = []
        for index, (name, *_rest) in enumerate(endpoints[sizes[0]]):
            runs: dict[str, list[hl.Result]] = {size: [] for size in sizes}
            measures = {}
            for size in sizes:
                _name, paths, token = endpoints[size][index]
                status, body = hl.probe(ports[size], paths[0], token or "")
                if status != 200:
                    raise SystemExit(f"{name} at {size}: {status} {body[:200]}")
                script = hl.write_wrk_script(
                    Path(work.name), index * 10 + sizes.index(size), paths, token, args.concurrency
                )

                measure = functools.partial(hl.run_driver, wrk, ports[size], args.concurrency)
                measures[size] = (paths, token, script, measure)
                measure(name, paths, token, script, 1.0, 0)  # warm-up: every worker connects
            ctx["busy"].append(cpu_busy_share())
            for _round in range(args.repeat):
                for size in sizes:
                    paths, token, script, measure = measures[size]
                    runs[size].append(
                        hl.measure_once(
                            servers[size], name, paths, token, script, measure, False, args
                        )
                    )
            results[name] = {size: hl.median_run(runs[size], name) for size in sizes}
            for size in sizes:
                r = results[name][size]
                print(
                    f"{name} @ {shown(size)}: {r.rps:.0f} req/s, p50 {r.pct(50):.1f} ms, "
                    f"p95 {r.pct(95):.1f} ms, p99 {r.pct(99):.1f} ms, {r.errors} errors",
                    flush=True,
                )
        ctx["load_after"] = os.getloadavg()[0]
    finally:
        for server in servers.values():
            hl.stop_gunicorn(server)
        for prefix in prefixes:
            hl.clear_cache_prefix(args.redis_url, prefix)
        work.cleanup()
        if args.drop:
            for size in sizes:
                drop_database(db_url(args, size))

    verdicts: dict[str, tuple[float, bool]] = {}
    for name, by_size in results.items():
        small, large = by_size[sizes[0]].pct(95), by_size[sizes[-1]].pct(95)
        ratio = large / small if small else float("inf")
        verdicts[name] = (ratio, ratio <= MAX_P95_GROWTH or name not in JUDGED)
    report = markdown(sizes, prepared, results, verdicts, ctx, args)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print()
    print(report)
    missed = [f"p95 growth of {name}" for name, (_ratio, met) in verdicts.items() if not met]
    missed += [
        f"generation at {size}"
        for size in sizes
        if prepared[size]["generation"]["ms"] > MAX_GENERATION_MS
    ]
    errors = sum(r.errors for by in results.values() for r in by.values())
    if errors:
        missed.append(f"{errors} failed requests")
    if missed:
        raise SystemExit("targets missed: " + ", ".join(missed))


if __name__ == "__main__":
    main()
