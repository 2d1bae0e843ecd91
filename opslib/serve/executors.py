"""Who runs an accepted alert's runbook: this machine, a process per run (``local``), or a
Kubernetes Job.

A registry (``--executor NAME``): an executor has a ``name`` and ``run(queued, store) ->
RunOutcome``, blocking until the run has ended, so the dispatcher's bounded pool of workers
bounds kernels (local) or Jobs being watched (kubernetes) alike. Both force the dry run again
(the row could have been written by an older receiver): runs from alerts are always dry.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import multiprocessing
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any, Protocol

from opslib import catalog, runner
from opslib.core.errors import BadInputError, OpslibError, RunbookTimeoutError
from opslib.core.progress import no_progress
from opslib.core.waits import poll_until
from opslib.serve.priority import lower_priority
from opslib.serve.routes import force_dry
from opslib.serve.store import AlertStore, Queued

#: Whether this runner records extra top-level fields (the alert as the run's trigger).
RUNNER_TAKES_EXTRA = "extra" in inspect.signature(runner.run).parameters


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended, as ``GET /runs`` and the notification show it."""

    status: str
    exit_code: int
    bundle: str = ""
    error: str = ""
    verdict: str = ""


class Executor(Protocol):
    name: str

    def run(self, queued: Queued, store: AlertStore) -> RunOutcome: ...


_EXECUTORS: dict[str, Callable[..., Executor]] = {}


def register_executor(name: str):
    def deco(factory):
        if name in _EXECUTORS:
            raise RuntimeError(f"executor {name!r} registered twice")
        _EXECUTORS[name] = factory
        return factory

    return deco


def open_executor(name: str, **kw: Any) -> Executor:
    """The executor registered as ``name``; BadInputError naming the known ones otherwise."""
    factory = _EXECUTORS.get(name)
    if factory is None:
        raise BadInputError(
            f"Unknown executor {name!r}; use one of {', '.join(sorted(_EXECUTORS))}."
        )
    return factory(**kw)


def forced(queued: Queued) -> dict[str, Any]:
    return force_dry(catalog.resolve(queued.runbook), queued.parameters)


def _error_text(error: Mapping[str, Any] | None) -> str:
    if not error:
        return ""
    return f"{error.get('ename', '')}: {error.get('evalue', '')}".strip(": ")


@dataclass(frozen=True)
class _LocalJob:
    """What a run's own process needs (picklable: it crosses to that process)."""

    queued: Queued
    evidence_dir: str
    env: dict[str, str]
    defaults: dict[str, Any]
    timeout: float | None
    #: the receiver's environment when the run started (the fork server's is older)
    environ: dict[str, str] = field(default_factory=dict)


def _run_local(job: _LocalJob) -> RunOutcome:
    """One run through ``opslib.runner.run``, its ending as ``GET /runs`` shows it."""
    kw: dict[str, Any] = {}
    if RUNNER_TAKES_EXTRA:
        kw["extra"] = {"trigger": job.queued.trigger}
    try:
        result = runner.run(
            job.queued.runbook,
            forced(job.queued),
            evidence_dir=job.evidence_dir,
            timeout=job.timeout,
            env=job.env,
            defaults=job.defaults,
            **kw,
        )
    except BadInputError as exc:  # the runbook changed under the route: refused, no kernel
        return RunOutcome("refused", exc.exit_code, error=str(exc))
    except OpslibError as exc:  # the evidence store and its fallback both failed
        return RunOutcome("failed", 4, error=f"{type(exc).__name__}: {exc}")
    rec = result.record or {}
    return RunOutcome(
        status=str(result.status),
        exit_code=result.exit_code,
        bundle=result.bundle or "",
        error=_error_text(rec.get("error")),
        verdict=str((rec.get("results") or {}).get("verdict", "")),
    )


def _run_in_child(job: _LocalJob, conn: Connection) -> None:
    """The body of a run's own process: lower priority, run, send the outcome back."""
    lower_priority()
    os.environ.clear()
    os.environ.update(job.environ)
    try:
        outcome = _run_local(job)
    except BaseException as exc:  # noqa: BLE001  the parent must hear how it ended
        outcome = RunOutcome("failed", 4, error=f"{type(exc).__name__}: {exc}")
    conn.send(outcome)
    conn.close()


#: what the fork server imports once, so each run's process starts in milliseconds
_PRELOAD = ["opslib.runner", "papermill", "nbclient", "nbconvert", "jupyter_client"]


@functools.cache
def _run_context() -> BaseContext:
    """The fork-server context (POSIX) runs start from, or spawn where there is no fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


@register_executor("local")
@dataclass
class LocalExecutor:
    """``opslib.runner.run`` on this machine, each run in a process of its own.

    Not in the receiver's own threads: a run's papermill, nbclient and HTML rendering are
    seconds of Python that would hold the receiver's GIL while the 202s wait (p99 679 ms
    under a burst with two runs in threads), and ``runner.run`` scopes ``os.environ``,
    which two runs in one process would share. Each run's process starts from a fork server
    that imported the runner once, runs at the workers' lower priority, and sends its outcome
    back through a pipe; a process that dies before it does (killed, out of memory) ends its
    row as an infrastructure failure (exit 4) instead of leaving it running.
    """

    evidence_dir: str = "evidence"
    env: Mapping[str, str] = field(default_factory=dict)
    defaults_for: Callable[[str], Mapping[str, Any]] = lambda _runbook: {}
    timeout: float | None = None
    name: str = "local"

    def run(self, queued: Queued, store: AlertStore) -> RunOutcome:
        job = _LocalJob(
            queued=queued,
            evidence_dir=str(self.evidence_dir),
            env=dict(self.env),
            defaults=dict(self.defaults_for(queued.runbook)),
            timeout=self.timeout,
            environ=dict(os.environ),
        )
        ctx = _run_context()
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_run_in_child, args=(job, send), name=f"opslib-run-{queued.id}", daemon=True
        )
        proc.start()
        send.close()  # the child holds the only writer: EOF when it ends
        try:
            outcome: RunOutcome = receive.recv()
        except EOFError:
            proc.join(timeout=30)
            return RunOutcome(
                "failed",
                4,
                error=f"the run's process ended without an outcome (exit code {proc.exitcode})",
            )
        finally:
            receive.close()
        proc.join(timeout=30)
        return outcome


def job_name(queued: Queued) -> str:
    """``opslib-<runbook>-<id>-<hash>``: a DNS label, stable across receiver restarts."""
    digest = hashlib.sha256(f"{queued.id}|{json.dumps(queued.trigger, sort_keys=True)}".encode())
    base = re.sub(r"[^a-z0-9-]", "-", queued.runbook.lower())[:36].strip("-")
    return f"opslib-{base}-{queued.id}-{digest.hexdigest()[:6]}"


_EXIT_IN_MESSAGE = re.compile(r"exit code (\d+)")


def job_exit_code(job: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> int | None:
    """The exit code of a finished Job: its pod's container, else its failure condition's text.

    None while the Job runs. A Job that failed without a code (deadline, backoff) is 1.
    """
    status = job.get("status") or {}
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        return 0
    failed = conditions.get("Failed") or conditions.get("FailureTarget")
    if failed is None:
        return None
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term.get("exitCode"):
                return int(term["exitCode"])
    m = _EXIT_IN_MESSAGE.search(str(failed.get("message", "")))
    return int(m.group(1)) if m else 1


_STATUS_OF_EXIT = {0: "succeeded", 2: "refused", 3: "findings", 4: "infrastructure-error"}

JobBuilder = Callable[..., list[dict[str, Any]]]


@register_executor("kubernetes")
@dataclass
class KubernetesExecutor:
    """Each run a Kubernetes Job (built by ``build``, the manifest ``opslib schedule
    kubernetes --job`` prints), watched until it ends; its exit code comes back to ``/runs``.

    ``build(runbook=, parameters=, name=, labels=, annotations=)`` returns the ConfigMap and
    the Job; it is injected by the command line so this package need not import the
    scheduling one. ``api`` builds a kubernetes ApiClient (``opslib.clients.k8s_api``).
    """

    build: JobBuilder
    api: Callable[[], Any]
    namespace: str = "default"
    evidence_dir: str = ""
    poll_s: float = 2.0
    watch_timeout_s: float = 4 * 3600.0
    name: str = "kubernetes"

    def run(self, queued: Queued, store: AlertStore) -> RunOutcome:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        name = queued.job or job_name(queued)
        store.set_job(queued.id, name)
        docs = self.build(
            runbook=queued.runbook,
            parameters=forced(queued),
            name=name,
            labels={"opslib.dev/alert-id": str(queued.id)},
            annotations={"opslib.dev/trigger": json.dumps(queued.trigger, default=str)[:4000]},
        )
        api = self.api()
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        try:
            for doc in docs:
                create = {
                    "ConfigMap": core.create_namespaced_config_map,
                    "Job": batch.create_namespaced_job,
                }[doc["kind"]]
                try:
                    create(self.namespace, doc)
                except ApiException as exc:
                    if exc.status != 409:  # 409: created before a restart; watch it
                        raise
            return self._watch(api, batch, core, name, queued.runbook)
        except ApiException as exc:
            return RunOutcome(
                "infrastructure-error", 4, error=f"Kubernetes API: {exc.status} {exc.reason}"
            )

    def _watch(self, api: Any, batch: Any, core: Any, name: str, runbook: str) -> RunOutcome:
        def check() -> tuple[bool, int | None, str]:
            job = api.sanitize_for_serialization(batch.read_namespaced_job(name, self.namespace))
            pods = api.sanitize_for_serialization(
                core.list_namespaced_pod(self.namespace, label_selector=f"job-name={name}")
            ).get("items", [])
            code = job_exit_code(job, pods)
            return code is not None, code, "running" if code is None else f"exit {code}"

        # the Job's bundle lands under this prefix (its run id is chosen inside the pod)
        bundle = f"{self.evidence_dir.rstrip('/')}/{runbook}/" if self.evidence_dir else ""
        try:
            code = poll_until(
                check,
                timeout_s=self.watch_timeout_s,
                poll_s=self.poll_s,
                desc=f"job {name}",
                on_timeout=lambda _v, _s: f"job {name} still running",
                progress=no_progress,
            )
        except RunbookTimeoutError as exc:
            return RunOutcome("unknown", 4, error=str(exc), bundle=bundle)
        assert code is not None
        return RunOutcome(
            _STATUS_OF_EXIT.get(code, "failed"),
            code,
            bundle=bundle,
            error="" if code == 0 else f"job {name} exited {code}",
        )
