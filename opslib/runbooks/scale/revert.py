"""Pre-warm and its revert: the revert plan a pre-warm records, and loading it back, verified.

A pre-warm (``revert_after_hours``) raises capacity before an event and records in its bundle
exactly what to set back and when (``revert_plan``: the changes, their plan digest, the time).
A later run with ``revert_bundle`` applies that plan and nothing else, after its own approval.

The bundle must verify first: its manifest and hash chain are checked by ``opslib evidence
verify``, run as a command. The runbook layer may not import the evidence package (it sits
above the runbooks), and the CLI is the one public verifier, the same check an auditor runs, so
the runbook calls it as it would call ``kubectl``. Only a local bundle folder is accepted.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from opslib.core.plans import Change, Plan
from opslib.runbooks.scale.model import Current, Proposal, RevertSource, TargetKind

RUNBOOK = "scale"
VERIFY_TIMEOUT_S = 120


def verify_bundle(path: Path) -> tuple[bool, str]:
    """(ok, what ``opslib evidence verify`` said) for a bundle folder."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "opslib.cli", "evidence", "verify", str(path)],
            capture_output=True,
            text=True,
            timeout=VERIFY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"opslib evidence verify could not run: {exc}"
    said = (out.stdout.strip() or out.stderr.strip()).splitlines()
    return out.returncode == 0, (said[-1] if said else f"exit {out.returncode}")[:400]


def load(bundle: str, *, target_kind: str, target: str) -> tuple[RevertSource | None, list[str]]:
    """The verified revert plan of ``bundle``, or the problems (one per reason) that refuse it.

    ``target_kind``/``target`` may be empty (then the bundle's are used); given, they must be
    the bundle's: a revert plan never lands on another target.
    """
    name = f"revert_bundle={bundle!r}"
    path = Path(bundle).expanduser()
    if bundle.startswith("s3://"):
        return None, [f"{name}: give a local bundle folder (copy it from the store first)"]
    if not (path / "record.json").is_file():
        return None, [f"{name}: no record.json there; give the folder of an earlier scale run"]
    ok, said = verify_bundle(path)
    if not ok:
        return None, [
            f"{name} does not verify ({said}); a revert is applied only from intact evidence"
        ]
    try:
        record = json.loads((path / "record.json").read_text())
    except ValueError as exc:
        return None, [f"{name}: record.json is not readable ({exc})"]
    results: dict[str, Any] = record.get("results") or {}
    problems = []
    if record.get("runbook") != RUNBOOK:
        problems.append(f"{name} is a {record.get('runbook')!r} run; give a scale run's bundle")
    rp = results.get("revert_plan") or {}
    if not rp.get("changes"):
        problems.append(
            f"{name} records no revert plan (it was not an applied pre-warm with "
            "revert_after_hours); nothing to revert"
        )
    kind, tgt = str(results.get("target_kind", "")), str(results.get("target", ""))
    if target_kind and target_kind != kind or target and target != tgt:
        problems.append(
            f"{name} belongs to {kind} {tgt}, not {target_kind or kind} {target or tgt}; "
            "leave target_kind and target empty or give the bundle's"
        )
    if problems:
        return None, problems
    plan = Plan(
        title=str(rp["title"]),
        changes=tuple(
            Change(c["action"], c["target"], c["effect"], c.get("params") or {})
            for c in rp["changes"]
        ),
        warnings=tuple(rp.get("warnings") or ()),
    )
    if plan.digest() != rp.get("digest"):
        return None, [
            f"{name}: the revert plan does not hash to its recorded digest; it was altered"
        ]
    return (
        RevertSource(
            bundle=str(path),
            run_id=str(record.get("run_id", "")),
            target_kind=kind,
            target=tgt,
            plan=plan,
            set_back=dict(rp.get("set") or {}),
            revert_at=str(rp.get("revert_at", "")),
            verified=said,
        ),
        [],
    )


def proposal(src: RevertSource, cur: Current) -> Proposal:
    """Exactly the recorded plan; the expected numbers are the ones it sets back."""
    notes = [f"Reverts the pre-warm of run {src.run_id} ({src.bundle}); evidence: {src.verified}."]
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    if src.revert_at and now < src.revert_at:
        notes.append(f"The pre-warm asked for the revert at {src.revert_at}: this is early.")
    plan = Plan(src.plan.title, src.plan.changes, src.plan.warnings + tuple(notes), src.plan.limits)
    if plan.digest() != src.plan.digest():  # warnings are not hashed; the changes must be equal
        raise AssertionError("revert plan digest moved")
    costs = (f"back to the capacity found before the pre-warm: {dict(src.set_back)}",)
    return Proposal(plan=plan, expected=dict(src.set_back), costs=costs)


def revert_record(
    kind: TargetKind, target: str, inverse: Plan, set_back: dict[str, Any], hours: float
) -> dict[str, Any]:
    """What a pre-warm records as ``revert_plan``: the changes, their digest, what and when."""
    at = _dt.datetime.now(_dt.UTC) + _dt.timedelta(hours=hours)
    return {
        **inverse.to_dict(),
        "target_kind": kind.value,
        "target": target,
        "set": set_back,
        "revert_at": at.isoformat(timespec="seconds"),
        "how": "run scale again with revert_bundle=<this bundle>, dry_run=False and an approval",
    }
