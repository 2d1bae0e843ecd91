"""Run a runbook headless with papermill and always leave an evidence bundle.

The order matters: parameters are validated (types, unknown names, secrets) before any kernel
starts; the kernel is this interpreter (``sys.executable -m opslib.core.kernel_launcher``, so a fresh
venv needs no ``ipykernel install``) with ``OPSLIB_HEADLESS=1`` and ``OPSLIB_RUN_DIR`` set;
papermill saves partial progress to a private staging dir while cells run; a whole-run
timeout or SIGTERM/SIGINT interrupts the kernel (then kills it after a grace period) and the
bundle is still written from the partial notebook. The bundle is redacted and sealed by
:func:`opslib.evidence.bundle.write_bundle`.

The staging dir lives under :func:`opslib.evidence.recover.staging_root` with a ``run.json``
saying what runs there, so a runner killed outright (SIGKILL, a machine that died) leaves
something to recover: each run first turns staging dirs whose processes are gone into bundles
with status ``killed``. An S3 evidence dir is checked before the kernel starts (Object Lock
present when a lock mode is asked for), and so is the signing key (``OPSLIB_SIGNING_KEY``),
which the kernel never sees. A run started by ``opslib approve`` carries its
:class:`~opslib.core.plans.ApprovalGrant` into the kernel, where :func:`opslib.safety.gate`
applies only a plan with the approved digest.

Exit codes: 0 succeeded; 1 failed / interrupted / timeout / killed (bundle written); 2 bad
input (refused before the kernel, or a ``BadInputError`` raised by the notebook: status
``refused``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as _dt
import functools
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opslib import catalog
from opslib.core.errors import BadInputError
from opslib.core.lazy_imports import import_papermill_lean
from opslib.core.plans import APPROVAL_ENV, REQUIRE_APPROVERS_ENV, ApprovalGrant
from opslib.core.redact import Redactor, registered_secrets
from opslib.core.runtime import SERVE_SECRET_ENVS
from opslib.evidence import bundle as bundle_mod
from opslib.evidence import recover as recover_mod
from opslib.evidence import signing
from opslib.evidence.record import EXIT_CODES, RunRecord, RunStatus
from opslib.evidence.store import LOCK_MODE_ENV, RETENTION_ENV, Store, open_store

#: Seconds between a kernel interrupt (SIGINT) and killing the kernel if it does not stop.
KILL_GRACE_SECONDS = 5.0
#: Where the bundle goes when the requested S3 evidence store cannot be written.
FALLBACK_EVIDENCE_DIR = "evidence"
#: papermill saves the running notebook at least this often during a long cell.
AUTOSAVE_SECONDS = 10
#: Environment default for ``--max-output-mb``.
MAX_OUTPUT_ENV = "OPSLIB_MAX_OUTPUT_MB"
#: never in a kernel: the signing key, and the alert receiver's secrets
_KERNEL_HIDDEN = (signing.SIGNING_KEY_ENV, *SERVE_SECRET_ENVS)


SUCCEEDED, FAILED, REFUSED, INTERRUPTED, TIMEOUT = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.REFUSED,
    RunStatus.INTERRUPTED,
    RunStatus.TIMEOUT,
)


@dataclass(frozen=True)
class RunResult:
    """What a run produced: status, process exit code, bundle location and its record."""

    status: RunStatus
    exit_code: int
    bundle: str | None
    record: RunRecord | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def html(self) -> str | None:
        if not self.bundle or not self.record:
            return None
        return f"{self.bundle}/{self.record['runbook']}.html"


class _Stop(Exception):
    """Raised inside the runner when a stop (signal/timeout) arrives before or between cells."""


def bad_input_names() -> set[str]:
    """Class names of BadInputError and every subclass loaded (opslib.core.errors and domain modules)."""
    names: set[str] = set()
    stack: list[type] = [BadInputError]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return names


def is_bad_input(ename: str) -> bool:
    """Whether a notebook's exception name is a BadInputError subclass.

    A domain module may define its own subclass (``class QueueMissing(NotFoundError)``) that
    this process never imported: find the opslib module defining ``ename`` and import it.
    """
    if not ename or not ename.isidentifier():
        return False
    if ename in bad_input_names():
        return True
    import importlib

    root = Path(__file__).resolve().parent
    needle = f"class {ename}("
    for path in root.rglob("*.py"):
        try:
            if needle not in path.read_text(encoding="utf-8"):
                continue
        except OSError:
            continue
        module = ".".join(("opslib", *path.relative_to(root).with_suffix("").parts))
        try:
            importlib.import_module(module.removesuffix(".__init__"))
        except ImportError:
            continue
    return ename in bad_input_names()


class _Control:
    """Shared state between the executing thread, signal handlers and the timeout timer."""

    def __init__(self) -> None:
        self.reason = ""  # "", INTERRUPTED or TIMEOUT
        self.detail = ""
        self.stop = threading.Event()
        self.km: Any = None
        self.timers: list[threading.Timer] = []
        self.lock = threading.Lock()

    def kernel_pid(self) -> int | None:
        prov = getattr(self.km, "provisioner", None) if self.km is not None else None
        pid = getattr(prov, "pid", None)
        return pid if isinstance(pid, int) and pid > 0 else None

    def fire(self, reason: str, detail: str) -> bool:
        """Stop the run: interrupt the kernel now, kill it after the grace period. True if first."""
        with self.lock:
            first = not self.reason
            if first:
                self.reason, self.detail = reason, detail
            self.stop.set()
        pid = self.kernel_pid()
        if pid is None:
            return first
        if first:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
            t = threading.Timer(KILL_GRACE_SECONDS, self.kill)
            t.daemon = True
            t.start()
            self.timers.append(t)
        else:  # a second signal: do not wait for the grace period
            self.kill()
        return first

    def kill(self) -> None:
        pid = self.kernel_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def cancel(self) -> None:
        for t in self.timers:
            t.cancel()


def _engine_class():
    """A papermill engine whose client uses our kernel manager and stops between cells on request."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine
    from papermill.utils import merge_kwargs, remove_args

    class _Client(PapermillNotebookClient):
        def __init__(self, nb_man, control: _Control, **kw: Any) -> None:
            super().__init__(nb_man, **kw)
            self._control = control

        def execute_cell(self, cell, cell_index, *args, **kwargs):
            if self._control.stop.is_set():
                raise _Stop(self._control.detail)
            return super().execute_cell(cell, cell_index, *args, **kwargs)

    class _Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            control = kwargs.pop("opslib_control")
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                kwargs,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            return _Client(nb_man, control, **final).execute()

    return _Engine


_ENGINE_NAME = "opslib"


def _register_engine() -> None:
    from papermill.engines import papermill_engines

    if _ENGINE_NAME not in papermill_engines._engines:
        papermill_engines.register(_ENGINE_NAME, _engine_class())


#: bytes a unix socket path may have (sun_path is 108 on Linux, with its NUL)
_SUN_PATH_MAX = 107


def kernel_manager(
    env: dict[str, str],
    ipc_dir: str | os.PathLike[str],
    on_start: Any = None,
):
    """An AsyncKernelManager running ``sys.executable -m opslib.core.kernel_launcher`` (ipykernel,
    without the interpreter's teardown at exit) with ``env``.

    Building the spec here (rather than looking up an installed ``python3`` kernelspec, whose
    ``argv[0]`` is a bare ``python`` resolved on PATH) guarantees the kernel is this very
    interpreter with opslib importable, in any fresh venv.
    """
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class _KM(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw.setdefault("env", env)
            await AsyncKernelManager._async_start_kernel(self, **kw)
            pid = getattr(self.provisioner, "pid", None)
            if on_start is not None and isinstance(pid, int):
                on_start(pid)

    # IPC: unix sockets in the run's private (0700) staging dir instead of loopback TCP, so
    # nothing else on the machine can reach the kernel. The path must be unique per run: the
    # default (``./kernel-ipc``) would let two runs in one directory cross their messages.
    socket_dir, short_dir = os.fspath(ipc_dir), ""
    if len(os.path.join(socket_dir, "kernel-99999")) > _SUN_PATH_MAX:
        # a unix socket path longer than sun_path cannot be bound: use a short private dir
        short_dir = socket_dir = tempfile.mkdtemp(prefix="opslib-ipc-")
    km = _KM(kernel_name="python3", transport="ipc", ip=os.path.join(socket_dir, "kernel"))
    if short_dir:
        weakref.finalize(km, shutil.rmtree, short_dir, True)
    km._kernel_spec = KernelSpec(
        argv=[sys.executable, "-m", "opslib.core.kernel_launcher", "-f", "{connection_file}"],
        display_name="Python 3 (ipykernel)",
        language="python",
        interrupt_mode="signal",
        metadata={},
    )
    return km


@contextlib.contextmanager
def _signals(control: _Control, phase: dict[str, str]) -> Iterator[None]:
    """SIGTERM/SIGINT stop the kernel instead of killing the runner (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        name = signal.Signals(signum).name
        first = control.fire(INTERRUPTED, f"{name} received")
        if first and phase["name"] == "prepare" and control.kernel_pid() is None:
            raise _Stop(f"{name} received before the kernel started")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _scoped_environ(overrides: dict[str, str]) -> Iterator[None]:
    """Apply ``overrides`` to os.environ for the run (so operator lookups see the sandbox)."""
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _load_param_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInputError(f"Cannot read parameter file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise BadInputError(f"Parameter file {path} must hold a mapping of name: value.")
    return data


def prepare(
    runbook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    param_file: str | os.PathLike[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[catalog.RunbookInfo, dict[str, Any]]:
    """Resolve and validate everything a run needs; raises BadInputError before any kernel.

    ``defaults`` fill parameters that neither ``parameters`` nor ``param_file`` gave (the
    sandbox's presets, a scheduler's standing values); names the notebook does not declare are
    ignored there, since one set of defaults may serve several versions of a runbook. Returns
    (runbook info, coerced parameters).
    """
    info = catalog.resolve(runbook)
    given: dict[str, Any] = {}
    if param_file:
        given.update(_load_param_file(param_file))
    given.update(parameters or {})
    params = catalog.validate(info, given)
    fill = {
        k: v for k, v in (defaults or {}).items() if k not in params and info.param(k) is not None
    }
    params.update(catalog.validate(info, fill))
    return info, params


def run(
    runbook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    evidence_dir: str | os.PathLike[str] = "evidence",
    timeout: float | None = None,
    param_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    object_lock_mode: str | None = None,
    retention_days: int | None = None,
    max_output_mb: float | None = None,
    approval: ApprovalGrant | None = None,
    require_approvers: int | None = None,
    recover_stale: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run a runbook headless and write its evidence bundle.

    ``runbook`` is a name from ``opslib list`` or a path to a notebook with a parameters cell.
    Raises :class:`~opslib.core.errors.BadInputError` (exit 2, no bundle) when the runbook or a
    parameter is invalid; otherwise always returns a :class:`RunResult` whose ``bundle`` is set,
    whatever happened in the notebook. ``env`` is added to the kernel's environment (and to
    this process's while the run lasts, so the evidence store and operator lookup see it);
    ``defaults`` fill the parameters not given (see :func:`prepare`). The sandbox is composed
    in by the caller (``opslib.run(..., sandbox=True)``, ``opslib run --sandbox``), never here.

    ``object_lock_mode`` (COMPLIANCE/GOVERNANCE; default ``OPSLIB_OBJECT_LOCK_MODE``) and
    ``retention_days`` (``OPSLIB_RETENTION_DAYS``) lock every object of an S3 bundle; a bucket
    without Object Lock is refused (BadInputError) before the kernel starts.
    ``max_output_mb`` (``OPSLIB_MAX_OUTPUT_MB``, default 20) bounds one cell output in the
    notebook. ``approval`` is the grant of ``opslib approve`` (see :mod:`opslib.approvals`);
    ``require_approvers`` sets ``OPSLIB_REQUIRE_APPROVERS`` in the kernel. With
    ``recover_stale`` (the default), staging dirs of killed runs are recovered first.
    ``extra`` adds top-level fields to record.json (redacted like the rest), for a caller that
    knows why the run started: ``opslib serve`` records the alert as ``trigger``. The record's
    own fields win over an ``extra`` field of the same name.
    """
    clash = sorted(set(extra or {}) & bundle_mod.RECORD_FIELDS)
    if clash:
        raise BadInputError(f"extra record fields {clash} would replace the record's own.")
    control = _Control()
    phase = {"name": "prepare"}
    with _signals(control, phase):
        if recover_stale:
            _recover_stale()
        try:
            info, params = prepare(runbook, parameters, param_file=param_file, defaults=defaults)
            with _scoped_environ(dict(env or {})):
                opts = _store_options(evidence_dir, object_lock_mode, retention_days, max_output_mb)
        except _Stop as exc:  # stopped before anything ran: nothing to record
            raise KeyboardInterrupt(str(exc)) from exc
        run_env = dict(env or {})
        if approval is not None:
            run_env[APPROVAL_ENV] = approval.to_json()
        if require_approvers is not None:
            run_env[REQUIRE_APPROVERS_ENV] = str(require_approvers)
        return _execute(
            info,
            params,
            run_env,
            control,
            phase,
            evidence_dir=evidence_dir,
            timeout=timeout,
            opts=opts,
            approval=approval,
            extra=dict(extra or {}),
        )


@dataclass(frozen=True)
class _StoreOptions:
    """What the bundle writer needs beyond the notebook: the opened store and its bounds."""

    store: Store
    lock_mode: str
    retention_days: int | None
    max_output_mb: float
    signed: bool


def _env_number(name: str, kind: type) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError as exc:
        raise BadInputError(f"{name}={raw!r} is not a number.") from exc


def _store_options(
    evidence_dir: str | os.PathLike[str],
    lock_mode: str | None,
    retention_days: int | None,
    max_output_mb: float | None,
) -> _StoreOptions:
    """Open and check the evidence store and the signing key before any kernel starts."""
    mode = lock_mode if lock_mode is not None else os.environ.get(LOCK_MODE_ENV, "")
    days = retention_days if retention_days is not None else _env_number(RETENTION_ENV, int)
    bound = max_output_mb if max_output_mb is not None else _env_number(MAX_OUTPUT_ENV, float)
    if bound is not None and bound <= 0:
        raise BadInputError(f"max_output_mb={bound}: give a size in MB greater than 0.")
    store = open_store(evidence_dir, lock_mode=mode or None, retention_days=days)
    store.check_writable()
    signer = signing.signer_from_env()  # a bad key path refuses the run now, not at the end
    return _StoreOptions(
        store,
        (mode or "").upper(),
        days,
        bound if bound is not None else bundle_mod.MAX_OUTPUT_MB,
        signer is not None,
    )


def _recover_stale() -> None:
    """Turn staging dirs of killed runs into ``killed`` bundles; never stops the new run."""
    try:
        written, problems = recover_mod.recover_all()
    except Exception as exc:  # noqa: BLE001  recovery is a courtesy at start: say it, go on
        written, problems = [], [f"{type(exc).__name__}: {exc}"]
    for b in written:
        print(f"recovered a killed run: {b.location}", file=sys.stderr, flush=True)
    for p in problems:
        print(f"warning: could not recover a killed run: {p}", file=sys.stderr, flush=True)


def _execute(
    info: catalog.RunbookInfo,
    params: dict[str, Any],
    run_env: dict[str, str],
    control: _Control,
    phase: dict[str, str],
    *,
    evidence_dir: str | os.PathLike[str],
    timeout: float | None,
    opts: _StoreOptions,
    approval: ApprovalGrant | None,
    extra: dict[str, Any],
) -> RunResult:
    # Private (0700) staging dir: partial notebook, attachments, IPC sockets. It holds
    # unredacted output, so it is removed whatever happens (except SIGKILL: then it is what
    # recovery turns into a ``killed`` bundle).
    staging = Path(tempfile.mkdtemp(prefix=f"{info.name}-", dir=recover_mod.staging_root()))
    try:
        return _execute_in(
            staging,
            info,
            params,
            run_env,
            control,
            phase,
            evidence_dir=evidence_dir,
            timeout=timeout,
            opts=opts,
            approval=approval,
            extra=extra,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _execute_in(
    staging: Path,
    info: catalog.RunbookInfo,
    params: dict[str, Any],
    run_env: dict[str, str],
    control: _Control,
    phase: dict[str, str],
    *,
    evidence_dir: str | os.PathLike[str],
    timeout: float | None,
    opts: _StoreOptions,
    approval: ApprovalGrant | None,
    extra: dict[str, Any],
) -> RunResult:
    run_id = uuid.uuid4().hex[:10]
    started = _dt.datetime.now(_dt.UTC)
    out_path = staging / f"{info.name}.ipynb"
    kernel_env = {
        **os.environ,
        **run_env,
        "OPSLIB_HEADLESS": "1",
        "OPSLIB_RUN_DIR": str(staging),
        "OPSLIB_RUNBOOK": info.name,
        "OPSLIB_RUN_ID": run_id,
    }
    for name in _KERNEL_HIDDEN:
        kernel_env.pop(name, None)
    all_params = {**{p.name: p.default for p in info.parameters}, **params}
    links = dict(extra)  # the caller's fields first: the record's own, below, win
    if approval is not None:
        links["approves_bundle"] = approval.source_bundle
    recover_mod.write_run_file(
        staging,
        {
            "runbook": info.name,
            "run_id": run_id,
            "started": bundle_mod.utc_iso(started),
            "notebook": str(info.path),
            "parameters": all_params,
            "parameters_given": sorted(params),
            "evidence_dir": str(evidence_dir),
            "object_lock_mode": opts.lock_mode,
            "retention_days": opts.retention_days,
            "max_output_mb": opts.max_output_mb,
            "sandbox": "OPSLIB_SANDBOX_DIR" in run_env,
            "operator": {"os_user": bundle_mod.os_user(), "aws_caller_arn": ""},
            "extra": extra,  # the caller's record fields, kept if the run is killed
            **({"approves_bundle": approval.source_bundle} if approval is not None else {}),
        },
    )
    # Who and which commit: looked up while the kernel runs, never on the critical path.
    context: dict[str, Any] = {}

    def lookup() -> None:
        context["git"] = bundle_mod.git_commit(info.path)
        context["operator"] = bundle_mod.operator_info()

    status, error, nb = SUCCEEDED, None, None
    km = None
    kernel_idle = False
    warm: threading.Thread | None = None
    with _scoped_environ(run_env):
        looker = threading.Thread(target=lookup, name="opslib-operator", daemon=True)
        import_papermill_lean()
        looker.start()
        try:
            from papermill import execute_notebook
            from papermill.exceptions import PapermillExecutionError

            _register_engine()
            km = kernel_manager(
                kernel_env,
                staging,
                on_start=functools.partial(recover_mod.write_kernel_pid, staging),
            )
            control.km = km
            if timeout:
                t = threading.Timer(
                    float(timeout),
                    control.fire,
                    (TIMEOUT, f"run exceeded its {timeout:g} s timeout"),
                )
                t.daemon = True
                t.start()
                control.timers.append(t)
            warm = bundle_mod.warm_up()  # after papermill's imports: no import race between threads
            phase["name"] = "execute"
            try:
                nb = execute_notebook(
                    str(info.path),
                    str(out_path),
                    parameters=params,
                    engine_name=_ENGINE_NAME,
                    kernel_name="python3",
                    language="python",
                    progress_bar=sys.stderr.isatty(),
                    request_save_on_cell_execute=True,
                    autosave_cell_every=AUTOSAVE_SECONDS,
                    km=km,
                    opslib_control=control,
                )
                kernel_idle = True
            except PapermillExecutionError as exc:
                kernel_idle = True  # the failing cell ended; nothing else runs
                status = REFUSED if is_bad_input(exc.ename) else FAILED
                error = {"ename": exc.ename, "evalue": exc.evalue}
            except _Stop as exc:
                status, error = FAILED, {"ename": "Stopped", "evalue": str(exc)}
            except Exception as exc:  # noqa: BLE001  kernel died, start timeout...: the bundle records it
                status, error = FAILED, {"ename": type(exc).__name__, "evalue": str(exc)}
        except _Stop as exc:
            status, error = FAILED, {"ename": "Stopped", "evalue": str(exc)}
        finally:
            phase["name"] = "write"
            control.cancel()
            # A kernel still busy (timeout, interrupt, a failure mid-cell) stops before the
            # bundle is read from staging; an idle one stops while the bundle is written.
            if km is not None and not (kernel_idle and not control.reason):
                _shutdown(km)
                km = None
        if control.reason:
            status = RunStatus(control.reason)
            error = {
                "ename": "Interrupted" if status == INTERRUPTED else "Timeout",
                "evalue": control.detail,
            }
        if nb is None:
            nb = recover_mod.partial_notebook(staging, info.name, str(info.path))
        if "papermill" in nb.get("metadata", {}):  # not the private staging path
            nb["metadata"]["papermill"]["output_path"] = f"{info.name}.ipynb"
        finished = _dt.datetime.now(_dt.UTC)
        if error is not None:
            cell = bundle_mod.find_error(nb) or recover_mod.running_cell(nb)
            if cell:
                error = {**cell, **error} if status in (INTERRUPTED, TIMEOUT) else {**error, **cell}
        looker.join(timeout=3)
        if warm is not None:
            warm.join(timeout=30)
        redactor = Redactor([os.environ, kernel_env], extra_values=registered_secrets(staging))
        write = functools.partial(
            bundle_mod.write_bundle,
            nb,
            runbook=info.name,
            run_id=run_id,
            started=started,
            finished=finished,
            status=status,
            parameters=all_params,
            error=error,
            operator=context.get("operator"),
            notebook_path=str(info.path),
            git=context.get("git"),
            attachments_dir=staging / "attachments",
            redactor=redactor,
            max_output_mb=opts.max_output_mb,
        )
        extra = {
            **links,
            "exit_code": EXIT_CODES[status],
            "parameters_given": sorted(params),
            "sandbox": "OPSLIB_SANDBOX_DIR" in run_env,  # a run composed with the sandbox
        }
        if approval is not None:
            extra["approval_grant"] = {
                "source_bundle": approval.source_bundle,
                "plan_digests": list(approval.plan_digests),
                "approvers": list(approval.approvers),
                "require_approvers": approval.require_approvers,
            }
        if opts.lock_mode:
            extra["object_lock"] = {"mode": opts.lock_mode, "retention_days": opts.retention_days}

        def write_with_fallback() -> Any:
            try:
                return write(evidence_dir=opts.store, extra=extra)
            except Exception as exc:  # noqa: BLE001  remote store down: never lose the evidence
                if not str(evidence_dir).startswith("s3://"):
                    raise
                extra["evidence_store_error"] = f"could not write to {evidence_dir}: {exc}"
                return write(evidence_dir=FALLBACK_EVIDENCE_DIR, extra=extra)

        written = _write_while_stopping(write_with_fallback, km)
    return RunResult(status, EXIT_CODES[status], written.location, written.record)


def _write_while_stopping(write: Callable[[], Any], km: Any) -> Any:
    """``write()`` (the bundle), with the idle kernel ``km`` (if any) stopping meanwhile.

    A kernel takes 0.4-0.8 s to exit (interpreter teardown, jupyter_client's 0.1 s polls) and
    the bundle as long to render and hash; side by side, every run ends that much sooner. The
    kernel is stopped from this thread (its client's sockets belong to this thread's loop)
    and the bundle is written in a helper thread; both finish before this returns.
    """
    if km is None:
        return write()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="opslib-bundle") as pool:
        future = pool.submit(write)
        try:
            _shutdown(km)
        finally:
            result = future.result()
    return result


def _shutdown(km: Any) -> None:
    """Stop the kernel (graceful, bounded by jupyter_client's shutdown_wait_time, then kill)."""
    from jupyter_core.utils import run_sync

    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=False)
        else:
            run_sync(km.cleanup_resources)()
    except RuntimeError:  # "No kernel is running!": already gone, nothing to stop
        return
