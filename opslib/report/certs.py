"""The certificate table of cert-expiry: every row in full (the detail column carries the
hostname and trust verdicts, which a truncated cell would hide), days left coloured by threshold."""

from __future__ import annotations

from typing import Any

from opslib.report import _display, show_findings, show_heading


def show_certificates(inv: Any, *, warn_days: int, critical_days: int) -> None:
    """Soonest first; critical rows red, warning rows amber, nothing cut off."""
    import pandas as pd

    frame = inv.to_frame()
    show_heading(f"{len(frame)} certificate(s); soonest expires in {inv.soonest_days} days")
    if not len(frame):
        print("(no certificates found)")
        return

    def colour(row):
        d = row["days_left"]
        bad = d is not None and d <= critical_days or "MISMATCH" in str(row["detail"])
        warn = d is not None and d <= warn_days
        css = "background-color: #f8d7da" if bad else ("background-color: #fff3cd" if warn else "")
        return [css] * len(row)

    with pd.option_context("display.max_colwidth", None, "display.width", 250):
        _display(
            frame.style.apply(colour, axis=1)
            .hide(axis="index")
            .format({"days_left": "{:.1f}"}, na_rep="")
        )


def show_cert_findings(inv: Any) -> None:
    show_findings(inv.findings, title="Findings")
