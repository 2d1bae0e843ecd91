"""CUR at scale: opslib's DuckDB path against a plain pandas baseline on 10 million line items.

Generates (once; reused from ``.bench/``) a synthetic CUR 2.0 export of 10M line items with
:mod:`opslib.sandbox.curgen`, then computes the same three breakdowns with both engines: cost by service
(and by day and service), cost by day, and the top 20 resources by cost.

- opslib: ``open_cur`` + ``cur_costs`` (day x service, from which by-service and by-day follow)
  + ``top_resources``: DuckDB over the parquet, only the needed columns, never a full frame.
- pandas: ``pd.read_parquet(columns=[...the 4 needed...])`` then ``groupby`` for each breakdown,
  what one would write by hand.

Each engine runs in its own fresh subprocess (``--repeat`` times, alternating), which reports its
wall time for the work (imports excluded) and its peak RSS (interpreter and imports included for
both), printed as min / median / max over the runs. Both engines' results are cross-checked
(totals per service, per day, top resources).

Floor: opslib at least 5x faster (median) and at most 1/3 of pandas' peak memory on EVERY run:
the largest opslib peak against the smallest pandas peak (exit 1 otherwise).

Why a fresh clone once measured 1,178 MB and then 348 MB: the peak was read with
``getrusage(RUSAGE_SELF).ru_maxrss``, and on Linux that survives ``fork``/``vfork`` + ``exec``:
the kernel folds the high-water mark of the process image that exec replaces (the parent's,
shared by vfork) into the child's maxrss. On a fresh clone the parent had just generated the 10M
line items (~1.1 GB), so every worker "peaked" at least there; the second run reused the CUR and
the parent stayed small. Neither the page cache (DuckDB and pyarrow read(), they do not mmap the
parquet, so cached pages are not in anyone's RSS) nor DuckDB's buffer pool explained it. Now the
worker reads its own ``VmHWM`` (per address space, reset by exec), the CUR is generated in a
subprocess, and the opslib path bounds DuckDB (``threads``, ``memory_limit``: by default
:data:`opslib.aws.cur.DEFAULT_THREADS` / :data:`~opslib.aws.cur.DEFAULT_MEMORY_LIMIT`), so its
figure no longer depends on the machine's core count or RAM. ``--cache cold`` evicts the parquet
from the page cache before every run (posix_fadvise DONTNEED) to show the figure does not move.

    .venv/bin/python bench/cur.py [--rows 10000000] [--repeat 3] [--threads N] [--memory-limit 256MB]
                                  [--cache warm|cold]
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
    """This process's own peak RSS in MB: ``VmHWM`` on Linux (per address space, reset by exec).

    Not ``ru_maxrss``: on Linux it carries the parent's high-water mark over fork/vfork + exec,
    so a worker started by a parent that once held 1 GB reports at least 1 GB.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource  # not Linux: the best there is (macOS reports bytes)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if sys.platform == "darwin" else 1)


def evict_page_cache(path: Path) -> None:
    """Drop the parquet files' pages from the page cache (only theirs), for a cold run."""
    for f in Path(path).rglob("*.parquet"):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)  # a freshly written file: dirty pages cannot be dropped until written
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def stats(values: list[float]) -> tuple[float, float, float]:
    """(min, median, max)."""
    return min(values), statistics.median(values), max(values)


def verdict(runs: dict[str, list[dict]]) -> dict:
    """Speed-up on the medians, memory on every run: the largest opslib peak against the
    smallest pandas peak (a floor that holds only on the median is not a floor)."""
    t = {e: statistics.median(r["seconds"] for r in rs) for e, rs in runs.items()}
    speedup = t["pandas"] / t["opslib"]
    worst_mem = max(r["peak_rss_mb"] for r in runs["opslib"]) / min(
        r["peak_rss_mb"] for r in runs["pandas"]
    )
    per_run = [
        o["peak_rss_mb"] / p["peak_rss_mb"]
        for o, p in zip(runs["opslib"], runs["pandas"], strict=True)
    ]
    ok = speedup >= SPEED_FLOOR and worst_mem <= MEMORY_CEILING
    return {
        "speedup": speedup,
        "worst_mem_ratio": worst_mem,
        "per_run_mem_ratio": per_run,
        "ok": ok,
    }


def worker_opslib(path: str, threads: int | None, memory_limit: str | None) -> dict:
    import duckdb  # noqa: F401 - imports are excluded from the timing, as for pandas
    import pandas  # noqa: F401

    from opslib.aws.cost_model import CostQuery
    from opslib.aws.cur import connect, cur_costs, open_cur, top_resources

    t0 = time.perf_counter()
    src = open_cur(path)
    q = CostQuery(START, START + dt.timedelta(days=DAYS), "DAILY", "SERVICE", "UnblendedCost")
    con = connect(src, threads=threads, memory_limit=memory_limit)
    settings = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone()
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
        "duckdb": f"threads={settings[0]}, memory_limit={settings[1]}",
    }


def worker_pandas(path: str, threads: int | None, memory_limit: str | None) -> dict:
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
    from opslib.sandbox.curgen import GENERATOR_VERSION, cur_exists

    path = BENCH_DIR / f"cur-{rows}"
    marker = BENCH_DIR / f"cur-{rows}.json"
    want = {"rows": rows, "generator": GENERATOR_VERSION}
    if cur_exists(path) and marker.exists() and json.loads(marker.read_text()) == want:
        print(f"reusing {path} ({rows:,} line items)")
        return path
    print(f"generating {rows:,} CUR 2.0 line items into {path} (in a subprocess) ...", flush=True)
    t0 = time.perf_counter()
    # in a child: the generator's ~1 GB peak must stay out of this process, whose children
    # the workers are
    code = (
        "import datetime as dt, sys; from opslib.sandbox.curgen import generate_cur; "
        f"generate_cur(sys.argv[1], rows={rows}, start=dt.date.fromisoformat('{START}'), "
        f"days={DAYS}, seed=10, row_group_size=1_000_000)"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=ROOT, timeout=1800)
    marker.write_text(json.dumps(want))
    size = sum(f.stat().st_size for f in path.rglob("*.parquet")) / 1e6
    print(f"  done in {time.perf_counter() - t0:.1f} s, {size:,.0f} MB of parquet")
    return path


def run_worker(engine: str, path: Path, threads: int | None, memory_limit: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", engine, "--path", str(path)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if memory_limit is not None:
        cmd += ["--memory-limit", memory_limit]
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
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="DuckDB threads (default: opslib's bound; 0: all cores)",
    )
    ap.add_argument(
        "--memory-limit",
        default=None,
        help="DuckDB memory_limit (default: opslib's bound; '' none)",
    )
    ap.add_argument(
        "--cache",
        choices=("warm", "cold"),
        default="warm",
        help="cold: evict the parquet from the page cache before every run",
    )
    ap.add_argument("--worker", choices=("opslib", "pandas"), help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        fn = worker_opslib if args.worker == "opslib" else worker_pandas
        print(json.dumps(fn(args.path, args.threads, args.memory_limit)))
        return 0

    path = ensure_cur(args.rows)
    print(f"this process: peak RSS {_peak_rss_mb():.0f} MB (the workers measure their own)")
    runs: dict[str, list[dict]] = {"opslib": [], "pandas": []}
    for i in range(args.repeat):
        for engine in ("opslib", "pandas"):
            if args.cache == "cold":
                evict_page_cache(path)
            r = run_worker(engine, path, args.threads, args.memory_limit)
            runs[engine].append(r)
            extra = f"  ({r['duckdb']})" if "duckdb" in r else ""
            print(
                f"  run {i + 1} {engine:7s} {r['seconds']:7.2f} s  peak RSS {r['peak_rss_mb']:8.0f} MB{extra}",
                flush=True,
            )
    check_same(runs["opslib"][0], runs["pandas"][0])
    v = verdict(runs)
    print()
    print(
        f"CUR breakdowns (by service, by day, top 20 resources) over {args.rows:,} line items, "
        f"{os.cpu_count()} cores, {args.repeat} run(s) each, page cache {args.cache}; results identical"
    )
    print(
        f"  {'engine':18s} {'time min / median / max':>26s}   {'peak RSS min / median / max':>30s}"
    )
    for engine, label in (("opslib", "opslib (DuckDB)"), ("pandas", "pandas baseline")):
        tmin, tmed, tmax = stats([r["seconds"] for r in runs[engine]])
        mmin, mmed, mmax = stats([r["peak_rss_mb"] for r in runs[engine]])
        print(
            f"  {label:18s} {tmin:7.2f} / {tmed:6.2f} / {tmax:6.2f} s   "
            f"{mmin:7.0f} / {mmed:6.0f} / {mmax:6.0f} MB"
        )
    print(
        f"  speed-up (medians): {v['speedup']:.1f}x (floor {SPEED_FLOOR:g}x)   "
        f"memory, worst run (largest opslib / smallest pandas): {v['worst_mem_ratio']:.2f} of pandas "
        f"(ceiling {MEMORY_CEILING:.2f}); per run: "
        + ", ".join(f"{x:.2f}" for x in v["per_run_mem_ratio"])
    )
    print("PASS" if v["ok"] else "FAIL: below the floor")
    return 0 if v["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
