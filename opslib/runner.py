"""Run a runbook headless with papermill and always leave an evidence bundle.

The order matters: parameters are validated (types, unknown names, secrets) before any kernel
starts; the kernel is this interpreter (``sys.executable -m ipykernel_launcher``, so a fresh
venv needs no ``ipykernel install``) with ``OPSLIB_HEADLESS=1`` and ``OPSLIB_RUN_DIR`` set;
papermill saves partial progress to a private staging dir while cells run; a whole-run
timeout or SIGTERM/SIGINT interrupts the kernel (then kills it after a grace period) and the
bundle is still written from the partial notebook. The bundle is redacted and sealed by
:func:`opslib.evidence.bundle.write_bundle`.

Exit codes: 0 succeeded; 1 failed / interrupted / timeout (bundle written); 2 bad input
(refused before the kernel, or a ``BadInputError`` raised by the notebook: status ``refused``).
"""

from __future__ import annotations

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opslib import catalog
from opslib.core.errors import BadInputError
from opslib.core.redact import Redactor, registered_secrets
from opslib.evidence import bundle as bundle_mod
from opslib.evidence.record import EXIT_CODES, RunRecord, RunStatus

#: Seconds between a kernel interrupt (SIGINT) and killing the kernel if it does not stop.
KILL_GRACE_SECONDS = 5.0
#: Where the bundle goes when the requested S3 evidence store cannot be written.
FALLBACK_EVIDENCE_DIR = "evidence"
#: papermill saves the running notebook at least this often during a long cell.
AUTOSAVE_SECONDS = 10


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


def kernel_manager(env: dict[str, str], ipc_dir: str | os.PathLike[str]):
    """An AsyncKernelManager running ``sys.executable -m ipykernel_launcher`` with ``env``.

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

    # IPC: unix sockets in the run's private (0700) staging dir instead of loopback TCP, so
    # nothing else on the machine can reach the kernel. The path must be unique per run: the
    # default (``./kernel-ipc``) would let two runs in one directory cross their messages.
    km = _KM(kernel_name="python3", transport="ipc", ip=os.path.join(os.fspath(ipc_dir), "kernel"))
    km._kernel_spec = KernelSpec(
        argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
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
) -> RunResult:
    """Run a runbook headless and write its evidence bundle.

    ``runbook`` is a name from ``opslib list`` or a path to a notebook with a parameters cell.
    Raises :class:`~opslib.core.errors.BadInputError` (exit 2, no bundle) when the runbook or a
    parameter is invalid; otherwise always returns a :class:`RunResult` whose ``bundle`` is set,
    whatever happened in the notebook. ``env`` is added to the kernel's environment (and to
    this process's while the run lasts, so the evidence store and operator lookup see it);
    ``defaults`` fill the parameters not given (see :func:`prepare`). The sandbox is composed
    in by the caller (``opslib.run(..., sandbox=True)``, ``opslib run --sandbox``), never here.
    """
    control = _Control()
    phase = {"name": "prepare"}
    with _signals(control, phase):
        try:
            info, params = prepare(runbook, parameters, param_file=param_file, defaults=defaults)
        except _Stop as exc:  # stopped before anything ran: nothing to record
            raise KeyboardInterrupt(str(exc)) from exc
        return _execute(
            info,
            params,
            dict(env or {}),
            control,
            phase,
            evidence_dir=evidence_dir,
            timeout=timeout,
        )


def _execute(
    info: catalog.RunbookInfo,
    params: dict[str, Any],
    run_env: dict[str, str],
    control: _Control,
    phase: dict[str, str],
    *,
    evidence_dir: str | os.PathLike[str],
    timeout: float | None,
) -> RunResult:
    # Private (0700) staging dir: partial notebook, attachments, IPC sockets. It holds
    # unredacted output, so it is removed whatever happens.
    staging = Path(tempfile.mkdtemp(prefix=f"opslib-{info.name}-"))
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
    # Who and which commit: looked up while the kernel runs, never on the critical path.
    context: dict[str, Any] = {}

    def lookup() -> None:
        context["git"] = bundle_mod.git_commit(info.path)
        context["operator"] = bundle_mod.operator_info()

    status, error, nb = SUCCEEDED, None, None
    km = None
    warm: threading.Thread | None = None
    with _scoped_environ(run_env):
        looker = threading.Thread(target=lookup, name="opslib-operator", daemon=True)
        looker.start()
        try:
            from papermill import execute_notebook
            from papermill.exceptions import PapermillExecutionError

            _register_engine()
            km = kernel_manager(kernel_env, staging)
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
            except PapermillExecutionError as exc:
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
            if km is not None:
                _shutdown(km)
        if control.reason:
            status = RunStatus(control.reason)
            error = {
                "ename": "Interrupted" if status == INTERRUPTED else "Timeout",
                "evalue": control.detail,
            }
        if nb is None:
            nb = _partial_notebook(out_path, info.path)
        if "papermill" in nb.get("metadata", {}):  # not the private staging path
            nb["metadata"]["papermill"]["output_path"] = f"{info.name}.ipynb"
        finished = _dt.datetime.now(_dt.UTC)
        if error is not None:
            cell = bundle_mod.find_error(nb) or _running_cell(nb)
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
            parameters={**{p.name: p.default for p in info.parameters}, **params},
            error=error,
            operator=context.get("operator"),
            notebook_path=str(info.path),
            git=context.get("git"),
            attachments_dir=staging / "attachments",
            redactor=redactor,
        )
        extra = {
            "exit_code": EXIT_CODES[status],
            "parameters_given": sorted(params),
            "sandbox": "OPSLIB_SANDBOX_DIR" in run_env,  # a run composed with the sandbox
        }
        try:
            written = write(evidence_dir=evidence_dir, extra=extra)
        except Exception as exc:  # noqa: BLE001  remote store down: never lose the evidence
            if not str(evidence_dir).startswith("s3://"):
                raise
            extra["evidence_store_error"] = f"could not write to {evidence_dir}: {exc}"
            written = write(evidence_dir=FALLBACK_EVIDENCE_DIR, extra=extra)
    return RunResult(status, EXIT_CODES[status], written.location, written.record)


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


def _partial_notebook(out_path: Path, source: Path) -> Any:
    """The notebook as papermill last saved it, else the unexecuted source."""
    import nbformat

    for p in (out_path, source):
        try:
            return nbformat.read(str(p), as_version=4)
        except (OSError, ValueError):
            continue
    return nbformat.v4.new_notebook()


def _running_cell(nb: Any) -> dict[str, Any] | None:
    """The cell papermill marked as running when the run was stopped."""
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            src = cell.get("source", "")
            return {
                "cell_index": index,
                "cell_source": src if isinstance(src, str) else "".join(src),
            }
    return None
