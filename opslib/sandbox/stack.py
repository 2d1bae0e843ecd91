"""The local sandbox: moto (AWS APIs), a PostgreSQL cluster and a Kubernetes API emulator.

Everything listens on 127.0.0.1 on free ports and lives under one state directory::

    <state>/state.json      what runs (pids + start times), the SandboxInfo, scenario results
    <state>/presets.json    {runbook: {parameter: value}} registered by the scenario seeds
    <state>/kubeconfig      points at the emulator
    <state>/logs/           moto.log, kube.log, spawn-<name>.log
    <state>/kube/           the emulator's objects.json
    <data_root>/pg/         data/, wal_archive/, run/ (socket), postgres.log
    <data_root>/scenarios/  files the scenarios own

``data_root`` is the state dir itself when the PostgreSQL OS user can reach it, else a
private ``/tmp/opslib-sandbox-*`` dir (e.g. under pytest's 0700 tmp dirs); ``down`` removes
both. Processes are tracked by pid and start time and stopped by pid, never by name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opslib.core.errors import SandboxError
from opslib.pg.binaries import traversable_by
from opslib.sandbox import aws_server, postgres, procs
from opslib.sandbox.context import ScenarioContext
from opslib.sandbox.extra import require_extra
from opslib.sandbox.state import (
    SandboxInfo,
    _locked,
    _read_state,
    _state_guard,
    _write_state,
    env_vars,
    resolve_state_dir,
)

log = logging.getLogger("opslib.sandbox")

REGION = "us-east-1"
START_TIMEOUT = 30
COMPONENTS = ("aws", "postgres", "kube")


def _info_from_state(state: dict) -> SandboxInfo:
    info = dict(state["info"])
    info["scenario_errors"] = {
        n: r["error"] for n, r in state.get("scenarios", {}).items() if not r.get("ok")
    }
    info["stopped"] = tuple(c for c in COMPONENTS if not _component_alive(state, c))
    fields = {f.name for f in dataclasses.fields(SandboxInfo)}
    return SandboxInfo(**{k: v for k, v in info.items() if k in fields})


def _component_alive(state: dict, name: str) -> bool:
    rec = state.get("processes", {}).get(name)
    if name == "postgres":
        return bool(state.get("info")) and _cluster(state).running()
    return procs.alive(rec)


def _cluster(state: dict) -> postgres.Cluster:
    info = state["info"]
    return postgres.Cluster(
        Path(info["pg_data_dir"]).parent, bin_dir=Path(info["pg_bin_dir"]), user=info["pg_os_user"]
    )


def _choose_data_root(sd: Path, pg_user: str) -> Path:
    if traversable_by(sd, pg_user):
        return sd
    root = Path(tempfile.mkdtemp(prefix="opslib-sandbox-", dir="/tmp"))
    os.chmod(root, 0o755)
    return root


def _child_env() -> dict[str, str]:
    """Environment of the servers: no inherited endpoint or PG* settings that could confuse them."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PG", "KUBECONFIG", "OPSLIB_SANDBOX"))
    }
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        PYTHONUNBUFFERED="1",
    )
    return env


# --- public API ------------------------------------------------------------------------------


def up(state_dir: str | os.PathLike | None = None, *, seed: bool = True) -> SandboxInfo:
    """Start the sandbox (idempotent: a running one is returned as is; stopped parts restart).

    With ``seed``, every scenario seeds its part of the demo incident when anything was
    (re)started or it was never seeded; a failing scenario is recorded in
    ``info.scenario_errors`` and the others go on.
    """
    sd = resolve_state_dir(state_dir)
    sd.mkdir(parents=True, exist_ok=True)
    require_extra()
    # someone else's dir may refuse the chmod; whether PostgreSQL can reach it is checked later
    with contextlib.suppress(PermissionError):
        os.chmod(sd, 0o755)
    with _locked(sd):
        state = _read_state(sd)
        started = _ensure_running(sd, state)
        if seed and (started or not state.get("seeded")):
            _seed_locked(sd, state, None)
        info = _info_from_state(state)
    for name, err in info.scenario_errors.items():
        log.warning("sandbox scenario %s failed to seed: %s", name, err)
    return info


def _ensure_running(sd: Path, state: dict) -> list[str]:
    """Start each component that is not running; return the names started."""
    t0 = time.monotonic()
    pg_user = (state.get("info") or {}).get("pg_os_user") or postgres.os_user()
    bin_dir = Path((state.get("info") or {}).get("pg_bin_dir") or postgres.find_bin_dir())
    data_root = Path(state.get("data_root") or _choose_data_root(sd, pg_user))
    state["data_root"] = str(data_root)
    procs_state = state.setdefault("processes", {})
    cluster = postgres.Cluster(data_root / "pg", bin_dir=bin_dir, user=pg_user)
    kube_dir = sd / "kube"
    info = dict(state.get("info") or {})
    info.update(
        state_dir=str(sd),
        region=REGION,
        pg_host="127.0.0.1",
        pg_user=postgres.SUPERUSER,
        pg_database=postgres.DATABASE,
        pg_data_dir=str(cluster.data),
        pg_wal_archive=str(cluster.archive),
        pg_bin_dir=str(bin_dir),
        pg_os_user=pg_user,
        kubeconfig=str(sd / "kubeconfig"),
    )
    state["info"] = info
    started: list[str] = []
    kube_pending: dict | None = None
    aws_pending: dict | None = None
    pg_started_here = False
    try:
        # moto and kube are launched first and waited for after PostgreSQL: all start in parallel
        if not _component_alive(state, "aws"):
            aws_pending = aws_server.launch(log=sd / "logs" / "moto.log", env=_child_env())
            procs_state["aws"] = aws_pending
            _write_state(sd, state)

        if not _component_alive(state, "kube"):
            kube_dir.mkdir(parents=True, exist_ok=True)
            (kube_dir / "port").unlink(missing_ok=True)
            kube_pending = procs.spawn(
                [
                    sys.executable,
                    "-m",
                    "opslib.sandbox.kube",
                    "--port",
                    "0",
                    "--state",
                    str(kube_dir),
                ],
                log=sd / "logs" / "kube.log",
                env=_child_env(),
            )
            procs_state["kube"] = kube_pending
            _write_state(sd, state)

        if cluster.running():
            # possibly restarted behind our back (pg_ctl restart): adopt its pid and port
            procs_state["postgres"] = cluster.adopt()
            info["pg_port"] = procs_state["postgres"]["port"]
        else:
            cluster.init()
            port = procs.free_port()
            procs_state["postgres"] = cluster.start(port)
            pg_started_here = True
            info["pg_port"] = port
            _write_state(sd, state)
            cluster.bootstrap(port)
            started.append("postgres")

        if aws_pending is not None:
            rec = aws_server.ready(aws_pending, log=sd / "logs" / "moto.log", env=_child_env())
            procs_state["aws"] = rec
            info["aws_endpoint"] = rec["url"]
            started.append("aws")

        if kube_pending is not None:
            port_file = kube_dir / "port"
            ok = procs.wait_until(
                lambda: not procs.alive(kube_pending) or port_file.exists(),
                timeout=max(1.0, START_TIMEOUT - (time.monotonic() - t0) + 10),
                interval=0.1,
            )
            if not ok or not procs.alive(kube_pending) or not port_file.exists():
                raise SandboxError(
                    f"The Kubernetes API emulator did not start within {START_TIMEOUT}s. "
                    f"Log: {sd / 'logs' / 'kube.log'}\n{procs.tail(sd / 'logs' / 'kube.log')}"
                )
            port = int(port_file.read_text())
            info["kube_url"] = f"http://127.0.0.1:{port}"
            procs_state["kube"] = {**kube_pending, "port": port}
            from opslib.sandbox.kube import write_kubeconfig

            write_kubeconfig(sd / "kubeconfig", info["kube_url"])
            started.append("kube")
    except BaseException:
        # leave nothing half-started behind: stop what this call started, then report
        for name, pending in (("kube", kube_pending), ("aws", aws_pending)):
            if pending is not None:
                procs.stop(procs_state.get(name))
        if pg_started_here:
            cluster.stop()
        raise
    finally:
        _write_state(sd, state)
    if started:
        log.info("sandbox: started %s in %.1fs", ", ".join(started), time.monotonic() - t0)
    return started


def status(state_dir: str | os.PathLike | None = None) -> SandboxInfo | None:
    """The sandbox recorded in the state dir, or None when there is none.

    ``info.stopped`` names parts whose process is gone; ``info.scenario_errors`` the seeds
    that failed.
    """
    sd = resolve_state_dir(state_dir)
    state = _read_state(sd)
    if not state.get("info"):
        return None
    return _info_from_state(state)


def down(state_dir: str | os.PathLike | None = None) -> list[str]:
    """Stop every process the sandbox started (by pid) and remove its state.

    Safe when nothing runs. Returns what was stopped (for the CLI to print).
    """
    sd = resolve_state_dir(state_dir)
    if not sd.exists():
        return []
    stopped: list[str] = []
    with _locked(sd):
        state = _read_state(sd)
        t0 = time.monotonic()
        records = {f"spawn:{n}": r for n, r in state.get("spawned", {}).items()}
        records.update({n: state.get("processes", {}).get(n) for n in ("kube", "aws")})
        stopped += procs.stop_many(records)
        if state.get("info"):
            cluster = _cluster(state)
            if cluster.running() and cluster.stop():
                stopped.append("postgres")
            # clusters a scenario or runbook started under the sandbox (PITR restore targets)
            roots = {sd, Path(state.get("data_root") or sd)}
            for data in sorted({d for root in roots for d in postgres.clusters_under(root)}):
                postgres.stop_cluster(data, bin_dir=Path(state["info"]["pg_bin_dir"]))
                stopped.append(f"postgres:{data}")
        data_root = state.get("data_root")
        if (
            data_root
            and Path(data_root) != sd
            and Path(data_root).name.startswith("opslib-sandbox-")
        ):
            shutil.rmtree(data_root, ignore_errors=True)
        for child in sd.iterdir():
            if child.name == ".lock":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    shutil.rmtree(sd, ignore_errors=True)
    log.info("sandbox: stopped %s in %.1fs", ", ".join(stopped) or "nothing", time.monotonic() - t0)
    return stopped


def format_env(info: SandboxInfo) -> str:
    """``export K='V'`` lines for ``eval "$(opslib sandbox env)"``."""

    def q(v: str) -> str:
        return "'" + v.replace("'", "'\"'\"'") + "'"

    return "\n".join(f"export {k}={q(v)}" for k, v in env_vars(info).items())


def describe(info: SandboxInfo) -> str:
    """A human-readable status block (for ``opslib sandbox status`` / ``up``)."""
    lines = [
        f"state dir   {info.state_dir}",
        f"AWS (moto)  {info.aws_endpoint}  region {info.region}",
        f"PostgreSQL  {info.pg_host}:{info.pg_port}  user {info.pg_user} db {info.pg_database}  "
        f"(OS user {info.pg_os_user}, data {info.pg_data_dir}, WAL archive {info.pg_wal_archive})",
        f"Kubernetes  {info.kube_url}  kubeconfig {info.kubeconfig}",
    ]
    if info.stopped:
        lines.append(f"NOT RUNNING {', '.join(info.stopped)} (run `opslib sandbox up` to restart)")
    for name, err in sorted(info.scenario_errors.items()):
        lines.append(f"scenario {name} FAILED: {err}")
    return "\n".join(lines)


# --- scenarios -------------------------------------------------------------------------------


def seed(
    names: list[str] | tuple[str, ...] | str | None = None,
    state_dir: str | os.PathLike | None = None,
) -> dict[str, str]:
    """Re-run the seeds of ``names`` (all when None) on the running sandbox; each resets its
    own resources. Returns {scenario: "" when ok, else the error}."""
    from opslib.sandbox.scenarios import SCENARIOS

    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names or () if n not in SCENARIOS]
    if unknown:
        from opslib.core.errors import BadInputError

        raise BadInputError(
            f"Unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}."
        )
    sd = resolve_state_dir(state_dir)
    with _locked(sd):
        state = _read_state(sd)
        if not state.get("info"):
            raise SandboxError(f"No sandbox in {sd}; start one with `opslib sandbox up`.")
        dead = [c for c in COMPONENTS if not _component_alive(state, c)]
        if dead:
            raise SandboxError(
                f"Sandbox parts not running: {', '.join(dead)}; run `opslib sandbox up`."
            )
        return _seed_locked(sd, state, list(names) if names else None)


def _seed_one(ctx, name: str) -> tuple[dict, dict]:
    """Run one scenario's seed; returns (result record, presets). Never raises."""
    t0 = time.monotonic()
    try:
        module = importlib.import_module(f"opslib.sandbox.scenarios.{name}")
        got = module.seed(ctx) or {}
        if not isinstance(got, dict) or not all(isinstance(v, dict) for v in got.values()):
            raise TypeError(
                f"seed() must return {{runbook: {{param: value}}}}, got {type(got).__name__}"
            )
        json.dumps(got)  # presets must be JSON (they become -p values)
        return {"ok": True, "error": "", "runbooks": sorted(got)}, got
    except Exception as exc:  # noqa: BLE001 - a broken scenario must not break the sandbox; recorded
        err = f"{type(exc).__name__}: {exc}"
        log.warning("sandbox scenario %s failed: %s", name, err)
        return {"ok": False, "error": err, "runbooks": [], "traceback": traceback.format_exc()}, {}
    finally:
        log.info("sandbox: scenario %s seeded in %.1fs", name, time.monotonic() - t0)


def _seed_locked(sd: Path, state: dict, names: list[str] | None) -> dict[str, str]:
    """Run the seeds, in parallel threads (they touch disjoint resources and mostly wait on
    the servers), unless ``OPSLIB_SANDBOX_SEED_SERIAL=1``; then save results and presets."""
    from concurrent.futures import ThreadPoolExecutor

    from opslib.sandbox.scenarios import SCENARIOS

    info = _info_from_state(state)
    ctx = ScenarioContext(info, data_root=state.get("data_root"))
    todo = list(names or SCENARIOS)
    t0 = time.monotonic()
    timed: dict[str, tuple[dict, dict, float]] = {}

    def run(name: str) -> None:
        start = time.monotonic()
        rec, got = _seed_one(ctx, name)
        timed[name] = (rec, got, round(time.monotonic() - start, 2))

    if os.environ.get("OPSLIB_SANDBOX_SEED_SERIAL") == "1" or len(todo) < 2:
        for name in todo:
            run(name)
    else:
        with ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="sandbox-seed") as pool:
            list(pool.map(run, todo))

    presets_file = sd / "presets.json"
    try:
        presets = json.loads(presets_file.read_text())
    except (FileNotFoundError, ValueError):
        presets = {}
    results = state.setdefault("scenarios", {})
    out: dict[str, str] = {}
    for name in todo:  # registry order: a later scenario's presets win on a clash
        rec, got, seconds = timed[name]
        for rb in results.get(name, {}).get("runbooks", []):
            presets.pop(rb, None)
        presets.update(got)
        results[name] = {**rec, "seconds": seconds}
        out[name] = rec["error"]
    # processes the seeds spawned were recorded on disk meanwhile
    with _state_guard:
        state["spawned"] = _read_state(sd).get("spawned", {})
        state["seeded"] = True
        state["seed_seconds"] = round(time.monotonic() - t0, 2)
        _write_state(sd, state)
    presets_file.write_text(json.dumps(presets, indent=2, sort_keys=True))
    return out


#: preset key naming groups of parameters that exclude each other (db_instance or db_cluster)
ONE_OF = "_one_of"


def presets(
    runbook: str,
    state_dir: str | os.PathLike | None = None,
    *,
    given: Iterable[str] = (),
) -> dict[str, Any]:
    """The parameter values the scenarios registered for ``runbook`` ({} when none).

    A scenario may list groups of alternatives under ``ONE_OF`` (``[["db_instance",
    "db_cluster"]]``): when the caller ``given`` one parameter of a group, the presets of the
    others are dropped, so ``-p db_cluster=...`` is not refused as "both given" because the
    preset filled ``db_instance``.
    """
    sd = resolve_state_dir(state_dir)
    try:
        values = dict(json.loads((sd / "presets.json").read_text()).get(runbook, {}))
    except (FileNotFoundError, ValueError):
        return {}
    chosen = set(given)
    for group in values.pop(ONE_OF, None) or []:
        if chosen & set(group):
            for name in set(group) - chosen:
                values.pop(name, None)
    return values
