"""opslib.core.progress: plain text headless, nothing at all when silenced."""

from __future__ import annotations

from opslib.core.progress import default_progress, no_progress


def test_progress_headless_is_plain_text(monkeypatch, capsys):
    monkeypatch.setenv("OPSLIB_HEADLESS", "1")
    for _ in default_progress(range(3), desc="redrive", unit="msg"):
        pass
    out = capsys.readouterr().out
    assert "redrive" in out and "3/3" in out


def test_no_progress_shows_nothing_and_iterates(capsys):
    bar = no_progress(range(3), total=3, desc="quiet")
    assert list(bar) == [0, 1, 2]
    bar.update(3)
    bar.set_postfix_str("x")
    bar.close()
    assert capsys.readouterr().out == ""
