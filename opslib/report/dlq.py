"""Figures and tables for the dlq-redrive runbook. Imports no client: it shows what it is given."""

from __future__ import annotations

from typing import Any

from opslib.report import _display, show_heading, show_table


def age_figure(sample: Any):
    """Histogram of sampled message ages (hours), coloured by error shape.

    Why a chart: ages tell whether the DLQ holds one incident (a tight cluster) or a slow leak
    (a spread), and how close the oldest messages are to the retention limit.
    """
    import matplotlib.pyplot as plt

    frame = sample.to_frame()
    fig, ax = plt.subplots(figsize=(7, 3))
    if frame.empty:
        ax.text(0.5, 0.5, "no messages sampled", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    frame["age_h"] = frame["age_seconds"] / 3600.0
    frame["label"] = frame["error"].where(frame["error"] != "", frame["shape"]).str.slice(0, 40)
    groups = [(label, g["age_h"].to_numpy()) for label, g in frame.groupby("label", sort=False)]
    ax.hist([g for _, g in groups], bins=20, stacked=True, label=[lbl for lbl, _ in groups])
    ax.set_xlabel("message age (hours)")
    ax.set_ylabel("messages in sample")
    ax.set_title(f"{sample.queue}: age of {len(frame)} sampled message(s)")
    ax.legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    return fig


def show_sample(sample: Any) -> None:
    """Error shapes, the sampled messages (bodies redacted) and the age chart."""
    import matplotlib.pyplot as plt

    show_table(sample.shapes_frame(), title=f"{sample.queue}: sample grouped by error shape")
    show_table(
        sample.to_frame(), title="Sampled messages (bodies redacted; released, not consumed)"
    )
    fig = age_figure(sample)
    _display(fig)
    plt.close(fig)


def show_verification(verification: Any) -> None:
    """Counts before/after per queue, the totals, and the ids that need a look."""
    show_table(verification.summary_frame(), title="Redrive result")
    show_table(verification.to_frame(), title="Counts before and after")
    if verification.possible_duplicates:
        import pandas as pd

        show_table(
            pd.DataFrame({"source_message_id": list(verification.possible_duplicates)}),
            title="Possible duplicates (sent, not deleted from the DLQ)",
        )
    if verification.failed_ids:
        import pandas as pd

        show_table(
            pd.DataFrame({"source_message_id": list(verification.failed_ids)}),
            title="Failed (left in the DLQ)",
        )
    if verification.journal:
        show_heading(f"Journal: attachments/{verification.journal.rsplit('/', 1)[-1]}")
