"""Whole headless latency triage on the sandbox against a headless run of an empty notebook.

The on-call engineer must know within a minute where the time goes. This measures what the
runbook itself costs on top of simply running a notebook: both are run as the command a user
types (``opslib run ... --sandbox``, fresh processes, same interpreter and kernel), alternating,
N times each, after one uncounted warm-up each. The triage reads every source of the seeded
incident (one GetMetricData call for ALB/RDS/ElastiCache, ECS, Kubernetes pods and events,
PostgreSQL activity and the blocking tree), draws the chart and writes the full evidence
bundle; the empty notebook (a parameters cell and nothing else) pays only the kernel, papermill
and the bundle. Figure: ratio of the median wall times. Floor: ratio <= 4 (exit 1 above it).

    .venv/bin/python bench/latency_triage.py [-n 5] [--state-dir DIR]

The sandbox in ``--state-dir`` (default ``$OPSLIB_SANDBOX_DIR`` or ``./.sandbox``) is started if
needed and the latency scenario seeded once; dry runs change nothing, so no reseed in between.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = 4.0


def empty_notebook(path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "# Empty\n\nA parameters cell and nothing else: the baseline of a headless run."
            ),
            new_code_cell("unused: int = 0  # nothing reads it", metadata={"tags": ["parameters"]}),
        ],
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
    )
    nbformat.write(nb, str(path))


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(
            f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}"
        )
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5, help="runs of each command (default 5)")
    ap.add_argument(
        "--state-dir",
        default="",
        help="sandbox state dir (default $OPSLIB_SANDBOX_DIR or ./.sandbox)",
    )
    args = ap.parse_args(argv)

    from opslib import sandbox as sb

    info = sb.up(args.state_dir or None, seed=False)
    errors = sb.seed(["latency"], info.state_dir)
    if errors.get("latency"):
        raise SystemExit(f"seeding the latency scenario failed: {errors['latency']}")

    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        **sb.env_vars(info),
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("OPSLIB_RUN_DIR", None)
    with tempfile.TemporaryDirectory(prefix="opslib-bench-latency-") as tmp:
        empty = Path(tmp) / "empty.ipynb"
        empty_notebook(empty)
        ev = str(Path(tmp) / "evidence")
        triage_cmd = [
            str(bindir / "opslib"),
            "run",
            "latency-triage",
            "--sandbox",
            "--evidence-dir",
            ev,
        ]
        empty_cmd = [str(bindir / "opslib"), "run", str(empty), "--sandbox", "--evidence-dir", ev]
        timed(empty_cmd, env)  # warm-up each (page cache, .pyc), not counted
        timed(triage_cmd, env)
        base: list[float] = []
        ours: list[float] = []
        for i in range(args.n):
            base.append(timed(empty_cmd, env))
            ours.append(timed(triage_cmd, env))
            print(
                f"run {i + 1}/{args.n}: empty {base[-1]:.2f}s, triage {ours[-1]:.2f}s", flush=True
            )
    mb, mo = statistics.median(base), statistics.median(ours)
    ratio = mo / mb
    print(f"empty notebook (baseline) median: {mb:.2f}s")
    print(f"latency triage median:            {mo:.2f}s")
    print(f"ratio: {ratio:.2f}x (floor <= {FLOOR:.1f}x) -> {'OK' if ratio <= FLOOR else 'FAIL'}")
    return 0 if ratio <= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
