"""Overhead of `opslib run` over a bare `papermill` run of the same small notebook.

Both are run as the commands a user types (fresh processes, same interpreter, same kernel),
alternating, N times each; the figure is the ratio of the medians of wall time. `opslib run`
includes what papermill does not: parameter validation, redaction, HTML export, record.json,
the manifest and the hash chain. Floor: ratio <= 1.3 (exit 1 above it).

    .venv/bin/python bench/runner_overhead.py [-n 7] [--notebook PATH]
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

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NB = ROOT / "tests" / "fixtures" / "notebooks" / "tiny.ipynb"
FLOOR = 1.3


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=7, help="runs of each command (default 7)")
    ap.add_argument("--notebook", default=str(DEFAULT_NB))
    args = ap.parse_args(argv)

    bindir = Path(sys.executable).parent
    # papermill resolves the notebook's `python3` kernelspec, whose argv is a bare `python`:
    # put this interpreter first on PATH so both commands use the same kernel.
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("OPSLIB_RUN_DIR", None)
    with tempfile.TemporaryDirectory(prefix="opslib-bench-") as tmp:
        out_nb = str(Path(tmp) / "out.ipynb")
        papermill = [str(bindir / "papermill"), args.notebook, out_nb, "--no-progress-bar"]
        opslib_run = [
            str(bindir / "opslib"),
            "run",
            args.notebook,
            "--evidence-dir",
            str(Path(tmp) / "evidence"),
        ]
        # one warm-up each (page cache, .pyc), not counted
        timed(papermill, env)
        timed(opslib_run, env)
        base, ours = [], []
        for i in range(args.n):
            pair = [(papermill, base), (opslib_run, ours)]
            for cmd, sink in pair if i % 2 == 0 else reversed(pair):
                sink.append(timed(cmd, env))
    mb, mo = statistics.median(base), statistics.median(ours)
    ratio = mo / mb
    print(f"notebook: {args.notebook}  runs: {args.n} each, alternating")
    print(f"papermill (baseline) median: {mb:.3f} s   runs: {', '.join(f'{x:.2f}' for x in base)}")
    print(f"opslib run           median: {mo:.3f} s   runs: {', '.join(f'{x:.2f}' for x in ours)}")
    print(
        f"ratio opslib/papermill: {ratio:.3f}  (floor <= {FLOOR})  {'OK' if ratio <= FLOOR else 'ABOVE FLOOR'}"
    )
    return 0 if ratio <= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
