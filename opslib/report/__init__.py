"""Tables, verdicts and figures for notebooks. Imports no client: it only shows what it is given.

Runbook-specific figures live in ``opslib/report/<runbook>.py``; the shared pieces are here.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from opslib.core.findings import Finding, rank, to_frame

# Plain words, no emoji: evidence HTML is read on machines without an emoji font.
SEVERITY_BADGE = {
    "critical": "CRITICAL",
    "error": "ERROR",
    "warning": "WARNING",
    "info": "info",
    "ok": "ok",
}


def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:
        print(obj)
        return
    display(obj)


def show_heading(text: str) -> None:
    """A bold line that reads the same in the notebook, the HTML and plain text."""
    from IPython.display import Markdown

    _display(Markdown(f"**{text}**"))


def show_table(frame, *, title: str = "", max_rows: int = 50) -> None:
    """Show a DataFrame with an optional title; truncated tables say how many rows were cut."""
    if title:
        show_heading(title)
    if frame is None or len(frame) == 0:
        print("(no rows)")
        return
    _display(frame.head(max_rows))
    if len(frame) > max_rows:
        print(f"... {len(frame) - max_rows} more row(s) not shown")


def show_findings(findings: Iterable[Finding], *, title: str = "Findings") -> list[Finding]:
    """Findings ranked by severity as a table; returns the ranked list."""
    ranked = rank(findings)
    frame = to_frame(ranked)
    if len(frame):
        frame["severity"] = frame["severity"].map(lambda s: SEVERITY_BADGE.get(s, s))
    show_table(frame, title=title)
    return ranked


def verdict_line(findings: Iterable[Finding]) -> str:
    """The top finding as one line: severity, title, next action."""
    ranked = rank(findings)
    if not ranked:
        return "No findings."
    top = ranked[0]
    line = f"{top.severity.value.upper()}: {top.title}"
    if top.next_action:
        line += f" -> {top.next_action}"
    return line


def show_verdict(findings: Iterable[Finding]) -> str:
    """Print the one-line verdict in bold (Markdown in the notebook, plain text elsewhere)."""
    line = verdict_line(findings)
    show_heading(f"Verdict: {line}")
    return line


def show_skipped(what: str) -> None:
    """The visible 'skipped: no X given' line for an optional source left empty."""
    print(f"skipped: no {what} given")


def html_list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"
