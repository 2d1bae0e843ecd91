from __future__ import annotations

from opslib.core.findings import Finding, Severity, error_finding, rank, skipped_finding, to_frame


def test_rank_puts_most_urgent_first_and_is_stable():
    fs = [
        Finding(Severity.INFO, "i"),
        Finding(Severity.CRITICAL, "c1"),
        Finding(Severity.WARNING, "w"),
        Finding(Severity.CRITICAL, "c2"),
        Finding(Severity.ERROR, "e"),
    ]
    assert [f.title for f in rank(fs)] == ["c1", "c2", "e", "w", "i"]


def test_error_finding_keeps_the_error_visible():
    f = error_finding("postgres", ConnectionError("connection refused"))
    assert f.severity is Severity.ERROR
    assert "ConnectionError" in f.title and "connection refused" in f.evidence


def test_skipped_and_frame():
    f = skipped_finding("ecs", "ecs_cluster")
    assert f.title == "skipped: no ecs_cluster given"
    frame = to_frame([f])
    assert frame.loc[0, "severity"] == "info"
    assert list(frame.columns) == ["severity", "title", "source", "evidence", "next_action"]
