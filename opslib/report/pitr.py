"""Tables and the timeline figure for the pitr-restore runbook (no clients: shows what it is given)."""

from __future__ import annotations

import datetime as _dt
import io
from typing import TYPE_CHECKING

from opslib.report import _display, show_heading, show_table
from opslib.runbooks.pitr_restore import (
    Preflight,
    RestoreOutcome,
    RpoCheck,
    RtoCheck,
    StepOutcome,
    Validation,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def show_preflight(pre: Preflight) -> None:
    """The read-only checks, the restorable window, and what the restore carries from the source."""
    show_table(pre.to_frame(), title="Preflight (read only)")
    show_table(pre.window_frame(), title="Restorable window")
    settings = pre.settings_frame()
    if len(settings):
        show_table(
            settings, title="What a bare restore drops, and how this plan carries it", max_rows=100
        )


def show_outcome(outcome: RestoreOutcome) -> None:
    """Each applied step with its status and duration."""
    show_table(outcome.to_frame(), title=f"Restore: {outcome.status.value} -> {outcome.target}")
    if outcome.endpoint:
        print(f"target endpoint: {outcome.endpoint}" + (f":{outcome.port}" if outcome.port else ""))


def _style(frame: pd.DataFrame) -> object:
    def color(row):
        m = row.get("match", "")
        bg = "#fde2e1" if m == "NO" else ("#e3f6e5" if m == "yes" else "")
        return [f"background-color: {bg}" if bg else "" for _ in row]

    try:
        return frame.style.apply(color, axis=1).hide(axis="index")
    except (ImportError, AttributeError):  # jinja2 missing: plain frame
        return frame


def show_validation(validation: Validation) -> None:
    """Source and target side by side with the differences; a sample of restored items if any."""
    frame = validation.to_frame()
    show_heading(f"Validation ({validation.kind}): {validation.status.value}")
    if len(frame):
        _display(_style(frame))
    else:
        print("(no rows)")
    differ = int((frame["match"] == "NO").sum()) if len(frame) else 0
    if differ:
        print(
            f"{differ} check(s) differ between source and target (expected for data lost after restore_time)."
        )
    for e in validation.errors:
        print(f"validation error: {e}")
    if validation.sample:
        import pandas as pd

        show_table(pd.DataFrame(list(validation.sample)), title="Sample of restored items")
    if validation.time_to_restore_seconds is not None:
        show_heading(
            f"Time to restore (approval -> validated target): {validation.time_to_restore_seconds:.1f} s"
        )


def timeline_events(
    pre: Preflight, outcome: RestoreOutcome, validation: Validation
) -> list[tuple[str, _dt.datetime]]:
    """(label, UTC time) of the restore point, the window and each step of the run."""

    def parse(s: str) -> _dt.datetime | None:
        if not s:
            return None
        return _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))

    ev: list[tuple[str, _dt.datetime | None]] = [
        ("earliest restorable", pre.earliest),
        ("restore point", pre.restore_time),
        ("latest restorable", pre.latest),
        ("requested", pre.request.requested_at),
        ("approved", parse(outcome.approved_at)),
    ]
    if outcome.apply_result is not None:
        ev += [
            (o.action.split(":")[-1], parse(o.finished_at)) for o in outcome.apply_result.outcomes
        ]
    ev.append(("validated", parse(validation.validated_at)))
    return [(n, t) for n, t in ev if t is not None]


def timeline_frame(pre: Preflight, outcome: RestoreOutcome, validation: Validation) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {
            "event": n,
            "UTC": t.astimezone(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        for n, t in sorted(timeline_events(pre, outcome, validation), key=lambda e: e[1])
    ]
    return pd.DataFrame(rows, columns=["event", "UTC"])


def step_durations(
    outcome: RestoreOutcome, validation: Validation
) -> list[tuple[str, float, float]]:
    """(step, start, seconds) after approval: the steps run back to back, then validation."""
    rows: list[tuple[str, float, float]] = []
    t = 0.0
    if outcome.apply_result is not None:
        for o in outcome.apply_result.outcomes:
            secs = float(o.data.get("seconds") or 0.0)
            rows.append((o.action.split(":")[-1], t, secs))
            t += secs
    if validation.time_to_restore_seconds is not None:
        rows.append(("validation", t, max(0.0, validation.time_to_restore_seconds - t)))
    return rows


def timeline_figure(pre: Preflight, outcome: RestoreOutcome, validation: Validation) -> Figure:
    """Left: the restorable window and the restore point. Right: this run's steps after approval."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    # a bare Figure (no pyplot): renders the same under any backend, headless or not
    fig = Figure(figsize=(10, 2.8))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    if pre.earliest and pre.latest:
        ax.plot(
            [pre.earliest, pre.latest],
            [0, 0],
            lw=8,
            color="#9ecae1",
            solid_capstyle="butt",
            label="restorable window",
        )
    if pre.restore_time:
        ax.scatter([pre.restore_time], [0], color="#d62728", zorder=3, s=40, label="restore point")
    ax.set_yticks([])
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=_dt.UTC))
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_title("Data: restorable window (UTC)", fontsize=9)
    steps = step_durations(outcome, validation)
    if steps:
        names = [n for n, _, _ in steps]
        ax2.barh(
            range(len(steps)),
            [d for _, _, d in steps],
            left=[s0 for _, s0, _ in steps],
            color="#31a354",
        )
        ax2.set_yticks(range(len(steps)), names, fontsize=7)
        ax2.invert_yaxis()
        ax2.set_xlabel("seconds after approval", fontsize=8)
        total = validation.time_to_restore_seconds
        title = f"This run: time to restore {total:.1f} s" if total is not None else "This run"
        ax2.set_title(title, fontsize=9)
    else:
        ax2.set_axis_off()
        ax2.set_title(f"This run: {outcome.status.value} (nothing restored)", fontsize=9)
    fig.tight_layout()
    return fig


def show_timeline(pre: Preflight, outcome: RestoreOutcome, validation: Validation) -> None:
    show_table(timeline_frame(pre, outcome, validation), title="Timeline (UTC)")

    fig = timeline_figure(pre, outcome, validation)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    try:
        from IPython.display import Image

        _display(Image(data=buf.getvalue(), format="png"))
    except ImportError:
        print(f"(timeline figure: {len(buf.getvalue())} bytes of PNG)")


def show_next_steps(steps: list[str]) -> None:
    """Numbered cutover steps (Markdown in the notebook, plain text elsewhere)."""
    show_heading("Next steps (cutover is never automatic)")
    try:
        from IPython.display import Markdown

        _display(Markdown("\n".join(f"{i + 1}. {s}" for i, s in enumerate(steps))))
    except ImportError:
        for i, s in enumerate(steps):
            print(f"{i + 1}. {s}")


def show_rto(rto: RtoCheck) -> None:
    """The measured time to restore against the recovery time objective (the drill's verdict)."""
    show_heading(rto.verdict)


def show_objectives(rto: RtoCheck, rpo: RpoCheck | None) -> None:
    """The drill's verdict: RTO met or missed, and the RPO seen at preflight."""
    show_rto(rto)
    if rpo is not None:
        show_heading(rpo.verdict)


def show_step(title: str, step: StepOutcome) -> None:
    """A gated step after the restore (cutover, DNS, drill cleanup): its status and what it did."""
    show_table(step.to_frame(), title=f"{title}: {step.status.value}")
    if step.detail and step.apply_result is None:
        print(step.detail)
