"""``RunbookOperator``: run a runbook from Airflow, with the exit codes Airflow can act on.

The operator runs ``opslib run`` as a subprocess (``opslib_command``, default ``$OPSLIB_COMMAND``
or ``opslib`` on PATH), so opslib and its kernel can live in their own virtualenv or image
while Airflow keeps its own pinned dependencies; this module needs only Airflow and the
standard library to import.

Exit code -> Airflow: 0 success (the record summary is the task's return value, pushed to XCom,
with the bundle path also under the key ``bundle``); 1 (runbook failed) and 4 (infrastructure)
raise ``AirflowException`` naming the bundle, so Airflow's retries apply; 2 (bad input) and 3
(findings at or above ``fail_on``) raise ``AirflowFailException``: retrying cannot change them.
Never a skip: a check that did not run must not look green.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:  # Airflow 3 (task SDK), then Airflow 2
    from airflow.sdk import BaseOperator
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # pragma: no cover - depends on the installed Airflow
    try:
        from airflow.exceptions import AirflowException, AirflowFailException
        from airflow.models import BaseOperator
    except ImportError as exc:
        raise ImportError(
            "opslib.airflow needs Apache Airflow: pip install 'opslib[airflow]' (or install "
            "apache-airflow in the Airflow environment and point OPSLIB_COMMAND at opslib)."
        ) from exc

COMMAND_ENV = "OPSLIB_COMMAND"
RETRYABLE = {1, 4}
FINAL = {2: "bad input or refused", 3: "findings at or above fail_on"}


class RunbookOperator(BaseOperator):
    """Run ``runbook`` headless with ``parameters``; its evidence goes to ``evidence_dir``.

    ``runbook``, ``parameters``, ``evidence_dir``, ``param_file`` and ``fail_on`` are templated
    (``{{ ds }}`` in a parameter). ``parameters`` never carry secrets: ``opslib run`` refuses
    them (exit 2); credentials come from the worker's environment.
    """

    template_fields: Sequence[str] = (
        "runbook",
        "parameters",
        "evidence_dir",
        "param_file",
        "fail_on",
    )
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        runbook: str,
        parameters: Mapping[str, Any] | None = None,
        evidence_dir: str = "evidence",
        param_file: str = "",
        fail_on: str = "",
        timeout_s: float | None = None,
        sandbox: bool = False,
        opslib_command: str | Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.runbook = runbook
        self.parameters = dict(parameters or {})
        self.evidence_dir = evidence_dir
        self.param_file = param_file
        self.fail_on = fail_on
        self.timeout_s = timeout_s
        self.sandbox = sandbox
        self.opslib_command = opslib_command
        self.env = dict(env or {})

    def command(self, result_path: str) -> list[str]:
        base = self.opslib_command or os.environ.get(COMMAND_ENV) or "opslib"
        cmd = shlex.split(base) if isinstance(base, str) else list(base)
        cmd += ["run", self.runbook, "--evidence-dir", str(self.evidence_dir)]
        if self.param_file:
            cmd += ["-f", str(self.param_file)]
        for name, value in self.parameters.items():  # -p overrides the file, as on the CLI
            cmd += ["-p", str(name), value if isinstance(value, str) else json.dumps(value)]
        cmd += ["--result-json", result_path]
        if self.fail_on:
            cmd += ["--fail-on", str(self.fail_on)]
        if self.timeout_s:
            cmd += ["--timeout", f"{self.timeout_s:g}"]
        if self.sandbox:
            cmd += ["--sandbox"]
        return cmd

    def execute(self, context: Any) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="opslib-airflow-") as tmp:
            result_path = str(Path(tmp) / "result.json")
            cmd = self.command(result_path)
            self.log.info("running: %s", shlex.join(cmd))
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                env={**os.environ, **self.env},
                check=False,
            )
            for line in (proc.stdout + proc.stderr).splitlines():
                self.log.info("%s", line)
            try:
                summary = json.loads(Path(result_path).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                summary = {"runbook": self.runbook, "exit_code": proc.returncode, "bundle": None}
        code = proc.returncode
        bundle = summary.get("bundle")
        ti = context.get("ti") if isinstance(context, Mapping) else None
        if ti is not None and bundle:
            ti.xcom_push(key="bundle", value=bundle)
        if code == 0:
            return summary
        why = summary.get("exit_reason") or (summary.get("error") or {}).get("evalue", "")
        msg = f"runbook {self.runbook} exited {code}: {why}; evidence bundle: {bundle}"
        if code in FINAL:
            raise AirflowFailException(f"{msg} ({FINAL[code]}; not retried)")
        raise AirflowException(msg)
