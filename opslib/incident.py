"""Incident timeline: every bundle of one ticket, in time order, as Markdown or HTML for the post-mortem.

``opslib incident report INC-42`` gathers the runs whose change ticket (the ``change_ticket``
parameter, an approval's ticket, or the id of the alert that triggered the run) is INC-42 and
tells their story in order: what each runbook saw (verdict, key results, findings), what it
planned (plan digests and changes), who approved what and when, what changed and its outcome,
whether each bundle still verifies and where it is. Where runbooks recorded a key metric (the
latency triage's p99, a DLQ's remaining depth, ...) a chart shows it across the runs, e.g. p99
before and after the mitigation. The Markdown pastes into a post-mortem document; the HTML
holds the same content, the chart inline.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opslib.core.errors import BadInputError, EvidenceError
from opslib.evidence.manifest import verify
from opslib.evidence.record import RunRecord
from opslib.evidence.store import Store, open_store

#: Results charted across runs when present, most telling first.
KEY_METRICS = (
    "p99_ms",
    "breach_minutes",
    "remaining",
    "moved",
    "total_cost",
    "time_to_restore_seconds",
)
_SKIP_RESULTS = {"plan_hash", "findings", "verdict"}


class ReportFormat(StrEnum):
    MD = "md"
    HTML = "html"


@dataclass(frozen=True)
class IncidentRun:
    """One bundle of the incident: its record, where it is, whether it verifies."""

    record: RunRecord
    location: str
    verified: bool
    verify_note: str


def ticket_ids(rec: Mapping[str, Any]) -> set[str]:
    """Every ticket a run belongs to: change_ticket, approvals' tickets, the alert's id."""
    r = RunRecord(rec)
    out = {str(r.parameters.get("change_ticket") or "").strip()}
    out |= {str(a.get("change_ticket") or "").strip() for a in r.approvals}
    trigger = rec.get("trigger") or {}
    if isinstance(trigger, Mapping):
        out |= {str(trigger.get(k) or "").strip() for k in ("id", "alert_id", "ticket")}
    out.add(str(rec.get("trigger_id") or "").strip())
    return {t for t in out if t}


def _records(store: Store) -> list[tuple[str, RunRecord]]:
    out = []
    for b in store.list_bundles():
        try:
            out.append((b, RunRecord(json.loads(store.read_bytes(f"{b}/record.json")))))
        except (EvidenceError, ValueError):
            continue
    return out


def known_tickets(evidence_dir: str = "evidence") -> list[str]:
    """Every ticket named by a bundle of the evidence dir."""
    return sorted({t for _b, rec in _records(open_store(evidence_dir)) for t in ticket_ids(rec)})


def incident_runs(ticket: str, evidence_dir: str = "evidence") -> list[IncidentRun]:
    """The runs of ``ticket``, oldest first; BadInputError listing the known tickets if none."""
    store = open_store(evidence_dir)
    found = [(b, r) for b, r in _records(store) if ticket in ticket_ids(r)]
    if not found:
        known = sorted({t for _b, r in _records(store) for t in ticket_ids(r)})
        raise BadInputError(
            f"No run in {store.root} names ticket {ticket!r}. Tickets that exist: "
            f"{', '.join(known) or '(none: no run recorded a change_ticket)'}."
        )
    runs = []
    for b, rec in sorted(found, key=lambda x: (str(x[1].get("started", "")), x[0])):
        res = verify(store.url(b))
        note = "verified" if res.ok else f"DOES NOT VERIFY: {res.first_bad}"
        runs.append(IncidentRun(rec, store.url(b), res.ok, note))
    return runs


def _scalar(v: Any) -> bool:
    return isinstance(v, bool | int | float | str) or v is None


def _cell(v: Any, width: int = 60) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    s = s.replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= width else s[: width - 3] + "..."


def key_metric(runs: Iterable[IncidentRun], prefer: str = "") -> str:
    """The metric to chart: ``prefer``, else the first of :data:`KEY_METRICS` in two runs or more."""
    runs = list(runs)

    def count(name: str) -> int:
        return sum(isinstance(r.record.results.get(name), int | float) for r in runs)

    for name in ((prefer,) if prefer else ()) + KEY_METRICS:
        if name and count(name) >= 2:
            return name
    return prefer if prefer and count(prefer) else ""


def chart_png(runs: list[IncidentRun], metric: str) -> bytes:
    """A PNG of ``metric`` across the runs (time on x), each point labelled with its runbook."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    pts = [
        (
            pd.to_datetime(r.record.get("started"), utc=True),
            r.record.results[metric],
            r.record.runbook,
        )
        for r in runs
        if isinstance(r.record.results.get(metric), int | float)
    ]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
    for t, v, name in pts:
        ax.annotate(
            name, (t, v), textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center"
        )
    ax.set_title(f"{metric} across the incident's runs")
    ax.set_ylabel(metric)
    ax.set_xlabel("run started (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _run_section(i: int, run: IncidentRun) -> list[str]:
    rec = run.record
    op = rec.get("operator") or {}
    who = op.get("aws_caller_arn") or op.get("os_user") or "?"
    lines = [
        f"### {i}. {rec.get('started', '?')} {rec.runbook}: {rec.get('status', '?')}",
        "",
        f"- run `{rec.run_id}` by {who}, {rec.get('started', '?')} to {rec.get('finished', '?')}",
        f"- evidence: `{run.location}` ({run.verify_note})",
    ]
    if rec.get("approves_bundle"):
        lines.append(f"- applies the plan approved from `{rec['approves_bundle']}`")
    if rec.get("recovered"):
        lines.append(f"- recovered after the process died: {rec['recovered'].get('at', '')}")
    if rec.error:
        lines.append(
            f"- error: {rec.error.get('ename', '')}: {_cell(rec.error.get('evalue', ''), 200)}"
        )
    results = rec.results
    if results.get("verdict"):
        lines.append(f"- verdict: {_cell(results['verdict'], 200)}")
    keys = [
        (k, v)
        for k, v in results.items()
        if k not in _SKIP_RESULTS and _scalar(v) and v not in ("", None)
    ][:8]
    if keys:
        lines.append("- saw: " + ", ".join(f"{k}={_cell(v, 40)}" for k, v in keys))
    findings = [f for f in results.get("findings") or [] if isinstance(f, Mapping)]
    bad = [f for f in findings if f.get("severity") not in ("ok", "info")]
    for f in bad[:6]:
        lines.append(f"  - finding [{f.get('severity')}] {_cell(f.get('title', ''), 120)}")
    for p in rec.plans:
        if not p.get("changes"):
            continue
        lines.append(
            f"- planned: {p.get('title', '')} ({len(p['changes'])} change(s), digest "
            f"`{str(p.get('digest', ''))[:12]}`): {p.get('decision', '')}"
        )
        for c in p["changes"][:6]:
            lines.append(f"  - {c.get('action')} {c.get('target')}: {c.get('effect')}")
    for a in rec.approvals:
        lines.append(
            f"- approved by **{a.get('approver')}** at {a.get('approved_at')} (plan "
            f"`{str(a.get('plan_hash', ''))[:12]}`, via {a.get('via', '')}"
            + (f", ticket {a.get('change_ticket')}" if a.get("change_ticket") else "")
            + ")"
        )
    for c in rec.changes:
        lines.append(
            f"- changed: {c.get('action')} {c.get('target')}: **{c.get('status')}**"
            + (f" ({_cell(c.get('detail'), 120)})" if c.get("detail") else "")
            + (f" at {c.get('finished_at')}" if c.get("finished_at") else "")
        )
    return [*lines, ""]


def render_markdown(
    ticket: str, runs: list[IncidentRun], *, metric: str = "", chart_link: str = ""
) -> str:
    """The timeline as Markdown (pastes into a post-mortem document)."""
    first, last = runs[0].record.get("started", ""), runs[-1].record.get("finished", "")
    ok = sum(r.verified for r in runs)
    lines = [
        f"# Incident {ticket}: timeline from the evidence",
        "",
        f"{len(runs)} run(s) from {first} to {last}; {ok} of {len(runs)} bundle(s) verify.",
        "",
        "| # | started (UTC) | runbook | status | approvals | changes | evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        rec = r.record
        approvers = ", ".join(str(a.get("approver")) for a in rec.approvals) or "-"
        applied = sum(c.get("status") == "applied" for c in rec.changes)
        lines.append(
            f"| {i} | {rec.get('started', '')} | {rec.runbook} | {rec.get('status', '')} | "
            f"{_cell(approvers)} | {applied} applied / {len(rec.changes)} | "
            f"{'ok' if r.verified else 'FAILS'} `{r.location}` |"
        )
    lines.append("")
    if metric:
        lines += [f"## {metric} across the runs", ""]
        if chart_link:
            lines += [f"![{metric}]({chart_link})", ""]
        lines += ["| started (UTC) | runbook | " + metric + " |", "|---|---|---|"]
        for r in runs:
            v = r.record.results.get(metric)
            if isinstance(v, int | float):
                lines.append(f"| {r.record.get('started', '')} | {r.record.runbook} | {v} |")
        lines.append("")
    lines += ["## Runs in order", ""]
    for i, r in enumerate(runs, 1):
        lines += _run_section(i, r)
    return "\n".join(lines)


def render_html(ticket: str, runs: list[IncidentRun], *, metric: str = "") -> str:
    """The same content as HTML, the chart inline (readable offline)."""
    import mistune

    chart = ""
    if metric:
        png = base64.b64encode(chart_png(runs, metric)).decode()
        chart = f"data:image/png;base64,{png}"
    body = mistune.html(render_markdown(ticket, runs, metric=metric, chart_link=chart))
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}"
        "code{background:#f4f4f4}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Incident "
        f"{html.escape(ticket)}</title><style>{style}</style></head><body>{body}</body></html>"
    )


def report(
    ticket: str,
    *,
    evidence_dir: str = "evidence",
    fmt: ReportFormat | str = ReportFormat.MD,
    metric: str = "",
    chart_path: str = "",
) -> str:
    """The incident report of ``ticket`` as Markdown or HTML.

    For Markdown, ``chart_path`` (a .png path) writes the chart there and links it.
    """
    try:
        fmt = ReportFormat(str(fmt).lower())
    except ValueError as exc:
        raise BadInputError(f"--format {fmt!r}: use md or html.") from exc
    runs = incident_runs(ticket, evidence_dir)
    m = key_metric(runs, metric)
    if fmt is ReportFormat.HTML:
        return render_html(ticket, runs, metric=m)
    link = ""
    if m and chart_path:
        with open(chart_path, "wb") as fh:
            fh.write(chart_png(runs, m))
        link = chart_path.rsplit("/", 1)[-1]
    return render_markdown(ticket, runs, metric=m, chart_link=link)
