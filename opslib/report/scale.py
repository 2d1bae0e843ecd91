"""What the scale notebook shows: capacity now, the evidence, the plan's cost, and the
before/after chart. No clients: it draws what the flow gives it (matplotlib and pandas only)."""

from __future__ import annotations

from typing import Any

from opslib.report import _display, show_findings, show_heading, show_table


def show_current(cur: Any, ev: Any) -> None:
    """The target's numbers and the readings (with their thresholds) that argue for a change."""
    show_table(cur.to_frame(), title=f"{cur.kind.value} {cur.target}: capacity now")
    show_table(ev.to_frame(), title="Utilisation, throttles, evictions (last hour)")
    if ev.hpa_note:
        print(ev.hpa_note)
    if ev.findings:
        show_findings(ev.findings, title="Thresholds crossed and reads that failed")


def show_costs(prop: Any) -> None:
    """The plan's cost in words and money, one line each."""
    show_heading("What it costs")
    for line in prop.costs or ("no cost estimate for this kind",):
        print(f"- {line}")


def _numeric(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def before_after_figure(res: Any, before_ev: Any = None, after_ev: Any = None):
    """Bars of every changed number before and after, and the metric series around the change.

    None when there is nothing numeric to draw (a class or billing change shows as a table).
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    b, a = _numeric(res.before), _numeric(res.after)
    keys = [k for k in b if k in a]
    frames = [
        e.readings.frame for e in (before_ev, after_ev) if e is not None and e.readings is not None
    ]
    frames = [f for f in frames if f is not None and len(f)]
    if not keys and not frames:
        return None
    fig, axes = plt.subplots(
        1, 2 if frames else 1, figsize=(11 if frames else 6, 3.4), squeeze=False
    )
    ax = axes[0][0]
    if keys:
        pd.DataFrame(
            {"before": [b[k] for k in keys], "after": [a[k] for k in keys]}, index=keys
        ).plot.bar(ax=ax, rot=0)
    ax.set_title(f"{res.target}: before / after")
    if frames:
        ax2 = axes[0][1]
        series = pd.concat(frames).sort_index()
        series = series[~series.index.duplicated(keep="last")]
        series.plot(ax=ax2, marker=".")
        if after_ev is not None and after_ev.readings is not None:
            ax2.axvline(after_ev.readings.start, color="red", linestyle="--", label="change")
        ax2.set_title("metrics around the change")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def show_result(res: Any, before_ev: Any = None, after_ev: Any = None) -> None:
    """The outcome: before/after table, the chart, the revert plan of a pre-warm."""
    import pandas as pd

    keys = list(dict.fromkeys([*res.before, *res.after]))
    show_table(
        pd.DataFrame(
            [{"what": k, "before": res.before.get(k), "after": res.after.get(k)} for k in keys]
        ).astype(str),
        title=f"{res.target}: before and after ({'applied' if res.applied else 'not applied'})",
    )
    fig = before_after_figure(res, before_ev, after_ev)
    if fig is not None:
        import matplotlib.pyplot as plt

        _display(fig)
        plt.close(fig)
    if res.throttled_before is not None or res.throttled_after is not None:
        print(f"throttle events: before {res.throttled_before}, after {res.throttled_after}")
    if res.revert_plan:
        rp = res.revert_plan
        show_heading(f"Revert plan (due {rp['revert_at']}): set back {rp['set']}")
        for c in rp["changes"]:
            print(f"- {c['action']} {c['target']}: {c['effect']}")
        print(rp["how"])
