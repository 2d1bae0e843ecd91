"""CUR at scale: opslib's DuckDB path against a plain pandas baseline on 10 million line items.

Generates (once; reused from ``.bench/``) a synthetic CUR 2.0 export of 10M line items with
:mod:`opslib.sandbox.curgen`, then computes the same three breakdowns with both engines: cost by service
(and by day and service), cost by day, and the top 20 resources by cost.

- opslib: ``open_cur`` + ``cur_costs`` (day x service, from which by-service and by-day follow)
  + ``top_resources``: DuckDB over the parquet, only the needed columns, never a full frame.
- pandas: ``pd.read_parquet(columns=[...the 4 needed...])`` then ``groupby`` for each breakdown,
  what one would write by hand.

Each engine runs in its own fresh subprocess (``--repeat`` times, alternating), which reports its
wall time for the work (imports excluded) and its peak RSS (``ru_maxrss``, interpreter and
imports included for both). The figures are the median time and the largest peak RSS. Both
engines' results are cross-checked (totals per service, per day, top resources).
Floor: opslib at least 5x faster and at most 1/3 of pandas' peak memory (exit 1 otherwise).

    .venv/bin/python bench/cur.py [--rows 10000000] [--repeat 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench"
START = dt.date(2026, 9, 1)
DAYS = 61  # two billing periods
SPEED_FLOOR = 5.0
MEMORY_CEILING = 1 / 3
COLUMNS = [
    "line_item_usage_start_date",
    "line_item_product_code",
    "line_item_resource_id",
    "line_item_unblended_cost",
]


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker_opslib(path: str, threads: int) -> dict:
    import duckdb  # noqa: F401 - imports are excluded from the timing, as for pandas
    import pandas  # noqa: F401

    from opslib.aws.cost_model import CostQuery
    from opslib.aws.cur import connect, cur_costs, open_cur, top_resources

    t0 = time.perf_counter()
    src = open_cur(path)
    q = CostQuery(START, START + dt.timedelta(days=DAYS), "DAILY", "SERVICE", "UnblendedCost")
    con = connect(src, threads=threads)
    daily_by_service = cur_costs(src, q, con=con)
    by_service = daily_by_service.by_group()
    by_day = daily_by_service.daily_total()
    top = top_resources(src, q, n=20, con=con)
    con.close()
    elapsed = time.perf_counter() - t0
    return {
        "seconds": elapsed,
        "peak_rss_mb": _peak_rss_mb(),
        "by_service": {r.name: r.cost for r in by_service.itertuples()},
        "by_day": {str(k.date()): float(v) for k, v in by_day.items()},
        "top": list(top["resource_id"]),
        "top_cost": [float(c) for c in top["cost"]],
    }


def worker_pandas(path: str, threads: int) -> dict:
    import pandas as pd

    from opslib.aws.cur import SERVICE_NAMES

    t0 = time.perf_counter()
    df = pd.read_parquet(path, columns=COLUMNS)
    day = df["line_item_usage_start_date"].dt.floor("D")
    daily_by_service = df.groupby([day, "line_item_product_code"])["line_item_unblended_cost"].sum()
    by_service = df.groupby("line_item_product_code")["line_item_unblended_cost"].sum()
    by_day = df.groupby(day)["line_item_unblended_cost"].sum()
    top = df.groupby("line_item_resource_id")["line_item_unblended_cost"].sum().nlargest(20)
    elapsed = time.perf_counter() - t0
    assert len(daily_by_service) > 0
    return {
        "seconds": elapsed,
        "peak_rss_mb": _peak_rss_mb(),
        "by_service": {SERVICE_NAMES.get(k, k): float(v) for k, v in by_service.items()},
        "by_day": {str(k.date()): float(v) for k, v in by_day.items()},
        "top": list(top.index),
        "top_cost": [float(c) for c in top.values],
    }


def ensure_cur(rows: int) -> Path:
    from opslib.sandbox.curgen import cur_exists, generate_cur

    path = BENCH_DIR / f"cur-{rows}"
    marker = BENCH_DIR / f"cur-{rows}.json"
    if cur_exists(path) and marker.exists() and json.loads(marker.read_text()).get("rows") == rows:
        print(f"reusing {path} ({rows:,} line items)")
        return path
    print(f"generating {rows:,} CUR 2.0 line items into {path} ...", flush=True)
    t0 = time.perf_counter()
    generate_cur(path, rows=rows, start=START, days=DAYS, seed=10, row_group_size=1_000_000)
    marker.write_text(json.dumps({"rows": rows}))
    size = sum(f.stat().st_size for f in path.rglob("*.parquet")) / 1e6
    print(f"  done in {time.perf_counter() - t0:.1f} s, {size:,.0f} MB of parquet")
    return path


def run_worker(engine: str, path: Path, threads: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        engine,
        "--path",
        str(path),
        "--threads",
        str(threads),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"{engine} worker failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def check_same(a: dict, b: dict) -> None:
    import math

    for key in ("by_service", "by_day"):
        assert a[key].keys() == b[key].keys(), f"{key}: different groups"
        for k in a[key]:
            assert math.isclose(a[key][k], b[key][k], rel_tol=1e-9), (
                f"{key}[{k}]: {a[key][k]} != {b[key][k]}"
            )
    assert a["top"] == b["top"], "top resources differ"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine, alternating")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: all cores)")
    ap.add_argument("--worker", choices=("opslib", "pandas"), help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        fn = worker_opslib if args.worker == "opslib" else worker_pandas
        print(json.dumps(fn(args.path, args.threads)))
        return 0

    path = ensure_cur(args.rows)
    runs: dict[str, list[dict]] = {"opslib": [], "pandas": []}
    for i in range(args.repeat):
        for engine in ("opslib", "pandas"):
            r = run_worker(engine, path, args.threads)
            runs[engine].append(r)
            print(
                f"  run {i + 1} {engine:7s} {r['seconds']:7.2f} s  peak RSS {r['peak_rss_mb']:8.0f} MB",
                flush=True,
            )
    check_same(runs["opslib"][0], runs["pandas"][0])
    t = {e: statistics.median(r["seconds"] for r in rs) for e, rs in runs.items()}
    m = {e: max(r["peak_rss_mb"] for r in rs) for e, rs in runs.items()}
    speedup = t["pandas"] / t["opslib"]
    mem_ratio = m["opslib"] / m["pandas"]
    print()
    print(
        f"CUR breakdowns (by service, by day, top 20 resources) over {args.rows:,} line items, "
        f"{os.cpu_count()} cores, median of {args.repeat}; results identical"
    )
    print(f"  {'engine':24s} {'time':>9s} {'peak RSS':>10s}")
    print(f"  {'opslib (DuckDB)':24s} {t['opslib']:8.2f}s {m['opslib']:8.0f}MB")
    print(f"  {'pandas baseline':24s} {t['pandas']:8.2f}s {m['pandas']:8.0f}MB")
    print(
        f"  speed-up: {speedup:.1f}x (floor {SPEED_FLOOR:g}x)   "
        f"memory: {mem_ratio:.2f} of pandas (ceiling {MEMORY_CEILING:.2f})"
    )
    ok = speedup >= SPEED_FLOOR and mem_ratio <= MEMORY_CEILING
    print("PASS" if ok else "FAIL: below the floor")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
