"""Progress for long steps, injected rather than imported from the UI.

Domain code that loops for a while (a bounded wait, a message move) takes a
``progress: ProgressFactory`` keyword and calls it like tqdm. The default,
:func:`default_progress`, draws a notebook widget in JupyterLab and throttled plain lines
headless (so evidence stays readable); :func:`no_progress` shows nothing (benchmarks,
library use). Both are tqdm objects or look like one (``update``, ``set_postfix_str``,
``close``).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from opslib.core import runtime

__all__ = ["Progress", "ProgressFactory", "default_progress", "no_progress"]


class Progress(Protocol):
    """The part of tqdm's interface that opslib uses."""

    def update(self, n: float = 1) -> Any: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any: ...
    def close(self) -> Any: ...


class ProgressFactory(Protocol):
    """Builds a :class:`Progress` bar: ``factory(iterable=None, *, total=, desc=, unit=)``."""

    def __call__(
        self, iterable: Any = None, *, total: int | None = None, desc: str = "", unit: str = "it"
    ) -> Any: ...


def default_progress(
    iterable: Any = None, *, total: int | None = None, desc: str = "", unit: str = "it"
) -> Any:
    """A tqdm bar: a notebook widget when interactive, plain throttled text lines when headless."""
    if not runtime.is_headless():
        try:
            from tqdm.notebook import tqdm as tqdm_nb

            return tqdm_nb(iterable, total=total, desc=desc, unit=unit)
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stdout,
        mininterval=2.0,
        ascii=True,
        dynamic_ncols=False,
        ncols=80,
    )


class _Silent:
    """A progress bar that shows nothing (and iterates its iterable unchanged)."""

    def __init__(self, iterable: Any = None) -> None:
        self._iterable = iterable

    def __iter__(self) -> Any:
        return iter(self._iterable or ())

    def update(self, n: float = 1) -> None:
        return None

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        return None

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        return None

    def close(self) -> None:
        return None


def no_progress(
    iterable: Any = None, *, total: int | None = None, desc: str = "", unit: str = "it"
) -> Any:
    """A :class:`ProgressFactory` that shows nothing."""
    return _Silent(iterable)
